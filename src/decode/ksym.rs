//! `ksym` and `kstack` (docs/config-format.md#decoders): kernel addresses → symbol names from a
//! kallsyms file (the table itself is [`crate::kallsyms::Kallsyms`]).
pub(super) use crate::kallsyms::Kallsyms;

/// Frame addresses of a `kstack` field: host-order u64s up to the first zero or the end.
pub(super) fn frames(input: &[u8]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for chunk in input.chunks(8) {
        let Ok(b) = <[u8; 8]>::try_from(chunk) else {
            return Err(format!("stack of {} bytes is not a multiple of 8", input.len()));
        };
        let addr = u64::from_ne_bytes(b);
        if addr == 0 {
            break;
        }
        out.push(addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_stop_at_zero_and_reject_ragged() {
        let mut b = Vec::new();
        b.extend_from_slice(&5u64.to_ne_bytes());
        b.extend_from_slice(&0u64.to_ne_bytes());
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(frames(&b), Ok(vec![5]));
        assert!(frames(&[1, 0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        assert_eq!(frames(&[0; 16]), Ok(vec![]));
    }
}
