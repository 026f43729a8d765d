//! JSON request bodies of the admin routes: one JSON object, decoded into the
//! route's request type. serde would also take a JSON array for a struct (its
//! fields by position), which no client means: it is refused like any other
//! malformed body.

use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// Decodes `body`, which must be one JSON object, as a `T`; `what` names the body in
/// the problem detail.
pub fn json_object<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::InvalidBody(format!("{what}: expected a JSON object")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Move {
        #[allow(dead_code)]
        to_seq: u64,
    }

    #[test]
    fn only_an_object_decodes() {
        assert!(json_object::<Move>(br#" {"to_seq": 3}"#, "move").is_ok());
        for bad in [&b"[3]"[..], b"3", b"", b"null", b"{\"to_seq\": -1}"] {
            let refused = json_object::<Move>(bad, "move");
            assert!(matches!(refused, Err(ApiError::InvalidBody(_))), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
