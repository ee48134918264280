//! Distinct tokens handed out without reuse: each measurement gets a file
//! of the next tokens of the pool, sized from the rate its row reached in
//! its warm-up, so wrk never runs out and nothing is sent twice while the
//! pool lasts. A pool is per process under test (each has its own caches);
//! when one runs dry it starts over, and the report says so.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Tokens shared by every cursor.
pub type Tokens = Arc<Vec<String>>;

/// One process's way through a pool of tokens.
#[derive(Debug)]
pub struct Cursor {
    tokens: Tokens,
    name: String,
    dir: PathBuf,
    next: usize,
    /// Tokens handed out, over all runs.
    pub handed_out: u64,
    /// Times this cursor went past the end of the pool.
    pub wraps: u64,
    files: u64,
}

impl Cursor {
    pub fn new(tokens: Tokens, name: &str, dir: &Path) -> Self {
        Cursor {
            tokens,
            name: name.to_owned(),
            dir: dir.to_owned(),
            next: 0,
            handed_out: 0,
            wraps: 0,
            files: 0,
        }
    }

    /// How many tokens a run of `duration` at `rate` requests/s needs, with
    /// room to spare; never more than the pool.
    pub fn need(&self, rate: f64, duration: Duration) -> usize {
        let want = (rate.max(1.0) * 1.5 * duration.as_secs_f64()).ceil() as usize + 2_000;
        want.min(self.tokens.len())
    }

    /// Write the next `count` tokens to a file for wrk.
    pub fn take(&mut self, count: usize) -> Result<PathBuf> {
        let len = self.tokens.len();
        if len == 0 {
            bail!("the token pool {} is empty", self.name);
        }
        self.files += 1;
        let path = self.dir.join(format!("{}-{}.txt", self.name, self.files));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let mut i = self.next;
        for _ in 0..count.min(len) {
            out.write_all(self.tokens[i].as_bytes())?;
            out.write_all(b"\n")?;
            i = (i + 1) % len;
        }
        out.flush()?;
        Ok(path)
    }

    /// After a run: `sent` tokens of the last file were used (requests
    /// completed plus those still in flight when wrk stopped).
    pub fn consumed(&mut self, sent: u64) {
        let len = self.tokens.len() as u64;
        if len == 0 {
            return;
        }
        let before = self.next as u64;
        let after = before + sent;
        self.wraps += after / len;
        self.next = (after % len) as usize;
        self.handed_out += sent;
    }

    pub fn pool_size(&self) -> usize {
        self.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hands_out_each_token_once_then_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let tokens: Tokens = Arc::new((0..5).map(|i| format!("t{i}")).collect());
        let mut c = Cursor::new(tokens, "p", dir.path());
        let f = c.take(3).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "t0\nt1\nt2\n");
        c.consumed(3);
        let f = c.take(3).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "t3\nt4\nt0\n");
        assert_eq!(c.wraps, 0);
        c.consumed(3);
        assert_eq!((c.wraps, c.handed_out), (1, 6));
    }
}
