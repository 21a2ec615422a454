//! FNV-1a, 64 bits: short, stable names and fingerprints (a key id in an object name, what was
//! last applied to an object). Not for anything an attacker chooses to collide.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fold(OFFSET, bytes)
}

fn fold(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// FNV-1a of what is written to it: hashes a serialization without holding it in memory.
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(OFFSET)
    }
}

impl Fnv1a {
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl std::io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 = fold(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_vectors_hold() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        // Written in pieces, the same hash as of the whole.
        let mut hasher = super::Fnv1a::default();
        std::io::Write::write_all(&mut hasher, b"foo").unwrap();
        std::io::Write::write_all(&mut hasher, b"bar").unwrap();
        assert_eq!(hasher.finish(), 0x8594_4171_f739_67e8);
    }
}
