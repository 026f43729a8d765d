//! `RecentTokens`: the tokens this node issued or already verified, so that the
//! token of every pull is not checked with a full Ed25519 verification (~60 µs).
//!
//! A token is recognised only by exact equality with a token that passed signing or
//! verification under this key ring, so recognition is as strict as verification.
//! Memory stays bounded: each of the 16 parts keeps two generations of at most
//! `GENERATION_CAPACITY` tokens; when the current one fills up it becomes the previous
//! one and the oldest generation is dropped. An open stream presents only its last
//! two tokens, so the working set is about two tokens per open stream.

use std::collections::HashMap;
use std::mem;

use parking_lot::Mutex;

use super::claims::TokenClaims;

/// Parts, chosen by the token's last character (a signature character).
const PARTS: usize = 16;
/// Tokens per generation of one part.
const GENERATION_CAPACITY: usize = 2048;

/// Recently issued or verified tokens and their claims.
#[derive(Default)]
pub(crate) struct RecentTokens {
    parts: [Mutex<Generations>; PARTS],
}

#[derive(Default)]
struct Generations {
    current: HashMap<Box<str>, TokenClaims>,
    previous: HashMap<Box<str>, TokenClaims>,
}

impl RecentTokens {
    /// The claims of `token` if it was issued or verified here recently.
    pub(crate) fn get(&self, token: &str) -> Option<TokenClaims> {
        let part = self.part(token).lock();
        part.current.get(token).or_else(|| part.previous.get(token)).cloned()
    }

    /// Remembers a token that was just signed or verified.
    pub(crate) fn remember(&self, token: &str, claims: &TokenClaims) {
        let mut part = self.part(token).lock();
        if part.current.len() >= GENERATION_CAPACITY {
            part.previous = mem::take(&mut part.current);
        }
        part.current.insert(token.into(), claims.clone());
    }

    fn part(&self, token: &str) -> &Mutex<Generations> {
        let last = token.as_bytes().last().copied().unwrap_or(0);
        &self.parts[usize::from(last) % PARTS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::StreamKind;

    fn claims(stream: u64) -> TokenClaims {
        TokenClaims { ispb: *b"32074986", shard: 1, stream, generation: 7, issued_at_ms: 1, kind: StreamKind::Live }
    }

    #[test]
    fn only_the_exact_token_is_recognised() {
        let recent = RecentTokens::default();
        recent.remember("AAAAbbbbCCCC", &claims(1));
        assert_eq!(recent.get("AAAAbbbbCCCC"), Some(claims(1)));
        assert_eq!(recent.get("AAAAbbbbCCCc"), None);
        assert_eq!(recent.get("AAAAbbbbCCC"), None);
    }

    #[test]
    fn memory_is_bounded_and_recent_tokens_survive_a_generation_change() {
        let recent = RecentTokens::default();
        let total = PARTS * GENERATION_CAPACITY * 3;
        for i in 0..total {
            recent.remember(&format!("token-{i}"), &claims(i as u64));
        }
        let kept: usize = recent
            .parts
            .iter()
            .map(|part| {
                let part = part.lock();
                part.current.len() + part.previous.len()
            })
            .sum();
        assert!(kept <= 2 * PARTS * GENERATION_CAPACITY, "kept {kept}");
        let last = format!("token-{}", total - 1);
        assert_eq!(recent.get(&last), Some(claims(total as u64 - 1)));
        assert_eq!(recent.get("token-0"), None, "the oldest generations are gone");
    }
}
