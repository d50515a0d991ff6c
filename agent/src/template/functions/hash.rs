//! The two hashing functions whose outputs become resource names, so they
//! must equal Azure's bit for bit: a different name is a different lab.
//!
//! - `uniqueString(a, b, ...)`: the arguments joined with `-`, hashed with
//!   the 64-bit MurmurHash variant of Azure's deployment engine (two 32-bit
//!   lanes over 8-byte blocks), written as 13 characters of lower-case
//!   RFC 4648 base32 from the most significant bit down.
//! - `guid(a, b, ...)`: a name-based (version 5, SHA-1) UUID of the
//!   arguments joined with `-`, in ARM's own namespace
//!   `11fb06fb-712d-4ddd-98c7-e71bbd588830`.

use sha1::{Digest, Sha1};

const C1: u32 = 0xab0e_9789;
const C2: u32 = 0x239b_961b;

fn mix_k1(k: u32) -> u32 {
    k.wrapping_mul(C2).rotate_left(15).wrapping_mul(C1)
}

fn mix_k2(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(17).wrapping_mul(C2)
}

fn fmix(mut h: u32) -> u32 {
    h = (h ^ (h >> 16)).wrapping_mul(0x85eb_ca6b);
    h = (h ^ (h >> 13)).wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Little-endian u32 of up to 4 bytes (missing high bytes are zero).
fn le(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (8 * i)))
}

fn murmur64(data: &[u8]) -> u64 {
    let (mut h1, mut h2) = (0u32, 0u32);
    let mut blocks = data.chunks_exact(8);
    for b in blocks.by_ref() {
        h1 = (h1 ^ mix_k1(le(&b[..4])))
            .rotate_left(19)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x561c_cd1b);
        h2 = (h2 ^ mix_k2(le(&b[4..])))
            .rotate_left(13)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x0bca_a747);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        h1 ^= mix_k1(le(&tail[..tail.len().min(4)]));
        if tail.len() > 4 {
            h2 ^= mix_k2(le(&tail[4..]));
        }
    }
    // The length is mixed in as a 32-bit value, as the engine does.
    let len = data.len() as u32;
    h2 ^= len;
    h1 = (h1 ^ len).wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (u64::from(h2) << 32) | u64::from(h1)
}

/// `uniqueString(parts...)`.
pub(crate) fn unique_string(parts: &[String]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut h = murmur64(parts.join("-").as_bytes());
    (0..13)
        .map(|_| {
            let c = ALPHABET[(h >> 59) as usize & 31] as char;
            h <<= 5;
            c
        })
        .collect()
}

/// `guid(parts...)`.
pub(crate) fn guid(parts: &[String]) -> String {
    const NAMESPACE: [u8; 16] = [
        0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88,
        0x30,
    ];
    let mut sha = Sha1::new();
    sha.update(NAMESPACE);
    sha.update(parts.join("-").as_bytes());
    let digest = sha.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(parts: &[&str]) -> String {
        unique_string(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// Published input/output pairs, from tools built on Microsoft's own
    /// Azure.Deployments.Expression package or checked against Bicep:
    /// - 'test' -> rbgf3xv4ufgzg and ('test','test2','test3') ->
    ///   bqgd334z2uj64 (the arm2tf Terraform provider's acceptance tests);
    /// - 'abc', ('hello','world'), ('foo','bar','baz') and a resource group
    ///   id (a shell port's self-test "verified against Bicep").
    ///
    /// Together they cover full 8-byte blocks and 3-byte tails. (Microsoft's
    /// DSC engine publishes other values for 'a': it hashes with the
    /// standard MurmurHash64A, which gives 'test' -> mngi6yjeq5fc6, not
    /// Azure's rbgf3xv4ufgzg.)
    #[test]
    fn unique_string_equals_azure() {
        assert_eq!(us(&["test"]), "rbgf3xv4ufgzg");
        assert_eq!(us(&["test", "test2", "test3"]), "bqgd334z2uj64");
        assert_eq!(us(&["abc"]), "cgtzqvhu4i23s");
        assert_eq!(us(&["hello", "world"]), "a7wkljktk6wne");
        assert_eq!(us(&["foo", "bar", "baz"]), "xzi4ioaxtmth4");
        assert_eq!(
            us(&["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"]),
            "bmg7c6xu4tw46"
        );
    }

    /// RFC 4122 v5 in ARM's namespace. 'test' -> d6a5baf1-... is the arm2tf
    /// provider's published pair; several arguments are joined with '-'
    /// (the Bicep string-functions page; Terraform modules that must name
    /// role assignments as Bicep does use uuidv5 over the '-' join).
    #[test]
    fn guid_is_a_v5_uuid_in_arms_namespace() {
        assert_eq!(
            guid(&["test".into()]),
            "d6a5baf1-8b9b-542a-8525-2982f1f98a0c"
        );
        assert_eq!(
            guid(&["foo".into(), "bar".into(), "baz".into()]),
            "2ed86837-7c7c-5eaa-9864-dd077fd19b0d"
        );
    }
}
