//! The proxy-wasm serialized header map, read in place: a request's headers
//! in one hostcall, without an allocation per header.
//!
//! Layout (little endian): `count: u32`, then `count` pairs of
//! `(name_len: u32, value_len: u32)`, then each name and value followed by a
//! NUL byte.

/// `(name, value)` pairs of a serialized map. Stops, rather than panics, at
/// anything malformed.
pub struct Pairs<'a> {
    buf: &'a [u8],
    index: usize,
    count: usize,
    data: usize,
}

pub fn pairs(buf: &[u8]) -> Pairs<'_> {
    let count = read_u32(buf, 0).unwrap_or(0);
    Pairs {
        buf,
        index: 0,
        count,
        data: 4usize.saturating_add(count.saturating_mul(8)),
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let lens = 4 + self.index * 8;
        let name_len = read_u32(self.buf, lens)?;
        let value_len = read_u32(self.buf, lens + 4)?;
        let name_end = self.data.checked_add(name_len)?;
        let name = self.buf.get(self.data..name_end)?;
        let value_start = name_end.checked_add(1)?;
        let value_end = value_start.checked_add(value_len)?;
        let value = self.buf.get(value_start..value_end)?;
        self.data = value_end.checked_add(1)?;
        self.index += 1;
        Some((name, value))
    }
}

/// The serialized form: headers we hand to the host, and mock hosts' maps.
pub fn serialize<'a>(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = headers.into_iter().collect();
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests;
