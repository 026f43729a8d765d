//! `RecentTokens`: the tokens this node issued or already verified, so that a pull
//! pays neither a full Ed25519 verification (~60 µs) for a token it has seen nor a
//! signature (~22 µs) for a token it has already signed — a 204 or a retried read
//! answers with the same cursor it was given, and tokens are deterministic.
//!
//! A token is recognised only by exact equality with a token that passed signing or
//! verification under this key ring, so recognition is as strict as verification.
//! Only tokens signed here with the active key are reused for the same claims; a
//! token verified under a retired key is never handed out again.
//!
//! Memory stays bounded: each of the 16 parts of both maps keeps two generations of at
//! most `GENERATION_CAPACITY` entries; when the current one fills up it becomes the
//! previous one and the oldest is dropped. An open stream presents only its last two
//! tokens, so the working set is about two tokens per open stream.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::mem;

use parking_lot::Mutex;

use super::claims::TokenClaims;

/// Parts of each map: by the token's last character (a signature character), or by
/// the stream id of the claims.
const PARTS: usize = 16;
/// Entries per generation of one part.
const GENERATION_CAPACITY: usize = 2048;

/// Recently issued or verified tokens and their claims.
#[derive(Default)]
pub(crate) struct RecentTokens {
    /// Tokens signed or verified here → their claims.
    by_token: [Mutex<Generations<Box<str>, TokenClaims>>; PARTS],
    /// Claims → the token signed for them here with the active key.
    by_claims: [Mutex<Generations<TokenClaims, Box<str>>>; PARTS],
}

struct Generations<K, V> {
    current: HashMap<K, V>,
    previous: HashMap<K, V>,
}

impl<K, V> Default for Generations<K, V> {
    fn default() -> Self {
        Generations { current: HashMap::new(), previous: HashMap::new() }
    }
}

impl<K: Hash + Eq, V: Clone> Generations<K, V> {
    fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.current.get(key).or_else(|| self.previous.get(key)).cloned()
    }

    fn insert(&mut self, key: K, value: V) {
        if self.current.len() >= GENERATION_CAPACITY {
            self.previous = mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl RecentTokens {
    /// The claims of `token` if it was issued or verified here recently.
    pub(crate) fn claims(&self, token: &str) -> Option<TokenClaims> {
        self.by_token[token_part(token)].lock().get(token)
    }

    /// The token signed here for exactly `claims`, if still remembered.
    pub(crate) fn token(&self, claims: &TokenClaims) -> Option<String> {
        self.by_claims[claims_part(claims)].lock().get(claims).map(String::from)
    }

    /// Remembers a token that was just verified.
    pub(crate) fn remember_verified(&self, token: &str, claims: &TokenClaims) {
        self.by_token[token_part(token)].lock().insert(token.into(), claims.clone());
    }

    /// Remembers a token that was just signed with the active key.
    pub(crate) fn remember_issued(&self, token: &str, claims: &TokenClaims) {
        self.remember_verified(token, claims);
        self.by_claims[claims_part(claims)].lock().insert(claims.clone(), token.into());
    }
}

fn token_part(token: &str) -> usize {
    usize::from(token.as_bytes().last().copied().unwrap_or(0)) % PARTS
}

fn claims_part(claims: &TokenClaims) -> usize {
    (claims.stream % PARTS as u64) as usize
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
        recent.remember_verified("AAAAbbbbCCCC", &claims(1));
        assert_eq!(recent.claims("AAAAbbbbCCCC"), Some(claims(1)));
        assert_eq!(recent.claims("AAAAbbbbCCCc"), None);
        assert_eq!(recent.claims("AAAAbbbbCCC"), None);
        assert_eq!(recent.token(&claims(1)), None, "a verified token is never handed out again");
        recent.remember_issued("DDDDeeee", &claims(2));
        assert_eq!(recent.token(&claims(2)).as_deref(), Some("DDDDeeee"));
        assert_eq!(recent.claims("DDDDeeee"), Some(claims(2)));
    }

    #[test]
    fn memory_is_bounded_and_recent_tokens_survive_a_generation_change() {
        let recent = RecentTokens::default();
        let total = PARTS * GENERATION_CAPACITY * 3;
        for i in 0..total {
            recent.remember_issued(&format!("token-{i}"), &claims(i as u64));
        }
        let kept: usize = recent.by_token.iter().map(|part| part.lock().len()).sum();
        assert!(kept <= 2 * PARTS * GENERATION_CAPACITY, "kept {kept} tokens");
        let kept: usize = recent.by_claims.iter().map(|part| part.lock().len()).sum();
        assert!(kept <= 2 * PARTS * GENERATION_CAPACITY, "kept {kept} claims");
        let last = format!("token-{}", total - 1);
        assert_eq!(recent.claims(&last), Some(claims(total as u64 - 1)));
        assert_eq!(recent.token(&claims(total as u64 - 1)), Some(last));
        assert_eq!(recent.claims("token-0"), None, "the oldest generations are gone");
        assert_eq!(recent.token(&claims(0)), None);
    }
}
