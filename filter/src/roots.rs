//! Which root context a stream belongs to. Several plugin configurations
//! can share one VM (same module, same `vm_id`), each with its own root
//! context; a stream's callbacks name only the stream. Envoy tells us a
//! stream's root when it creates the stream's context, so that is recorded,
//! but only while there is more than one root: with one, every stream
//! belongs to it, and the request path records nothing.

/// Recorded streams kept at most; beyond, the oldest half is forgotten.
/// They belong to streams that never reached their request headers (reset
/// before our turn); a forgotten stream that does arrive is refused.
pub const MAX_RECORDED: usize = 4096;

#[derive(Debug)]
pub struct Roots<T> {
    roots: Vec<(u32, T)>,
    /// `(stream, root)` for streams created while several roots existed.
    recorded: Vec<(u32, u32)>,
    /// `(first id, root)`: streams with a lower context id were created
    /// while this root was the only one, so went unrecorded. Context ids
    /// only grow within a VM.
    sole_before: Option<(u32, u32)>,
}

impl<T> Default for Roots<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Roots<T> {
    pub const fn new() -> Self {
        Roots {
            roots: Vec::new(),
            recorded: Vec::new(),
            sole_before: None,
        }
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    pub fn add_root(&mut self, id: u32, value: T) {
        if let [(sole, _)] = self.roots.as_slice() {
            self.sole_before = Some((id, *sole));
        }
        self.roots.push((id, value));
    }

    /// Envoy created context `stream` under root `root`.
    pub fn stream_created(&mut self, stream: u32, root: u32) {
        if self.roots.len() < 2 {
            return;
        }
        if self.recorded.len() >= MAX_RECORDED {
            self.recorded.drain(..MAX_RECORDED / 2);
        }
        self.recorded.push((stream, root));
    }

    pub fn get(&mut self, id: u32) -> Option<&mut T> {
        self.roots
            .iter_mut()
            .find(|(r, _)| *r == id)
            .map(|(_, v)| v)
    }

    /// The root of `stream`, at its request headers (asked once: the record
    /// is dropped). None when it cannot be known: refuse the request.
    pub fn for_stream(&mut self, stream: u32) -> Option<&mut T> {
        if self.roots.len() == 1 {
            return self.roots.first_mut().map(|(_, v)| v);
        }
        let root = match self.recorded.iter().position(|&(s, _)| s == stream) {
            Some(i) => self.recorded.swap_remove(i).1,
            None => match self.sole_before {
                Some((first, sole)) if stream < first => sole,
                _ => return None,
            },
        };
        self.get(root)
    }

    /// Keep the roots `keep` says are alive; returns how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) -> usize {
        let before = self.roots.len();
        self.roots.retain(|(id, _)| keep(*id));
        let dropped = before - self.roots.len();
        if dropped > 0 {
            let live: Vec<u32> = self.roots.iter().map(|(id, _)| *id).collect();
            self.recorded.retain(|(_, root)| live.contains(root));
            if self
                .sole_before
                .is_some_and(|(_, sole)| !live.contains(&sole))
            {
                self.sole_before = None;
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests;
