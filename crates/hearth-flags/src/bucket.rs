//! Sticky assignment: a unit (a user, a tenant, a targeting key) hashes to the same bucket of
//! 10,000 for the same salt on every node and in every release, so a rollout or an experiment
//! shows a unit the same variant everywhere. The hash is MurmurHash3 (x86, 32-bit), the one
//! flagd's fractional rollouts use, written out here because its output must never change with
//! a dependency's release.

/// Buckets a rollout is divided into: weights resolve to 0.01 %.
pub const BUCKETS: u32 = 10_000;

/// MurmurHash3's 32-bit x86 variant of `data` with `seed`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut hash = seed;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        hash ^= k;
        hash = hash
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (index, byte) in tail.iter().enumerate() {
            k |= u32::from(*byte) << (8 * index);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        hash ^= k;
    }
    hash ^= data.len() as u32;
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^= hash >> 16;
    hash
}

/// The bucket (0 to 9,999) of `unit` under `salt` (a flag's or an experiment's own).
pub fn bucket(salt: &str, unit: &str) -> u32 {
    // Hashed as `salt/unit` without building the string: small units fit on the stack.
    let mut buffer = [0u8; 96];
    let length = salt.len() + 1 + unit.len();
    let hash = if length <= buffer.len() {
        buffer[..salt.len()].copy_from_slice(salt.as_bytes());
        buffer[salt.len()] = b'/';
        buffer[salt.len() + 1..length].copy_from_slice(unit.as_bytes());
        murmur3_32(&buffer[..length], 0)
    } else {
        murmur3_32(format!("{salt}/{unit}").as_bytes(), 0)
    };
    // Multiply-shift maps the hash onto the buckets without modulo bias.
    ((u64::from(hash) * u64::from(BUCKETS)) >> 32) as u32
}

/// Which of `weights` (relative, any scale) `bucket` falls in: the first whose cumulative
/// share of the buckets passes it. `None` when every weight is zero.
pub fn pick(weights: &[u32], bucket: u32) -> Option<usize> {
    let total: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
    if total == 0 {
        return None;
    }
    let mut cumulative = 0u64;
    for (index, weight) in weights.iter().enumerate() {
        cumulative += u64::from(*weight);
        // The index's share of the buckets ends at cumulative / total of them.
        if u64::from(bucket) * total < cumulative * u64::from(BUCKETS) {
            return Some(index);
        }
    }
    weights.iter().rposition(|weight| *weight > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // From the reference implementation (SMHasher) and Python's mmh3.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
        assert_eq!(murmur3_32(b"abc", 0), 0xb3dd_93fa);
    }

    #[test]
    fn long_units_bucket_like_short_ones() {
        let long = "u".repeat(100);
        assert_eq!(
            bucket("flag", &long),
            ((u64::from(murmur3_32(format!("flag/{long}").as_bytes(), 0)) * 10_000) >> 32) as u32
        );
        assert!(bucket("flag", "user-1") < BUCKETS);
    }

    #[test]
    fn weights_divide_the_buckets_in_proportion() {
        assert_eq!(pick(&[1, 1], 0), Some(0));
        assert_eq!(pick(&[1, 1], 4_999), Some(0));
        assert_eq!(pick(&[1, 1], 5_000), Some(1));
        assert_eq!(pick(&[0, 3], 0), Some(1));
        assert_eq!(pick(&[25, 75], 2_499), Some(0));
        assert_eq!(pick(&[25, 75], 2_500), Some(1));
        assert_eq!(pick(&[0, 0], 10), None);
        assert_eq!(pick(&[1, 0], 9_999), Some(0));
    }
}
