//! Splitting a producer request body (SPEC.md §3) into its messages: one XML message
//! (`application/xml`, `text/xml`) or a `multipart/mixed` batch whose parts are XML.
//! Each message keeps the `PI-ResourceId` its producer gave (the request header for a
//! single message, the part header in a batch), unchecked. Error texts name the
//! problem, never payload content.

use bytes::Bytes;

use crate::multipart;

/// One message of a producer request, before any check of its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerMessage {
    pub body: Bytes,
    /// The `PI-ResourceId` the producer gave, as sent (lossily decoded).
    pub resource_id: Option<String>,
}

/// Why a producer body cannot be split into messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerBodyError {
    /// The request or one of its parts has a media type other than XML (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The multipart body is unusable (400).
    #[error("{0}")]
    InvalidBody(String),
}

/// Splits `body` by its `content_type`; `resource_id` is the request's
/// `PI-ResourceId` header, used for a single message; at most `max_messages` parts.
pub fn split(
    content_type: &str,
    resource_id: Option<&[u8]>,
    body: Bytes,
    max_messages: usize,
) -> Result<Vec<ProducerMessage>, ProducerBodyError> {
    match media_type(content_type).as_str() {
        "application/xml" | "text/xml" => {
            let resource_id = resource_id.map(|v| String::from_utf8_lossy(v).into_owned());
            Ok(vec![ProducerMessage { body, resource_id }])
        }
        "multipart/mixed" => split_multipart(content_type, &body, max_messages),
        other => Err(ProducerBodyError::UnsupportedMediaType(format!(
            "{other} is not accepted; send application/xml or multipart/mixed"
        ))),
    }
}

fn split_multipart(
    content_type: &str,
    body: &Bytes,
    max_messages: usize,
) -> Result<Vec<ProducerMessage>, ProducerBodyError> {
    let boundary = multipart::boundary_from_content_type(content_type)
        .ok_or_else(|| ProducerBodyError::InvalidBody("multipart/mixed without a usable boundary".into()))?;
    let parts =
        multipart::parse(body, &boundary, max_messages).map_err(|e| ProducerBodyError::InvalidBody(e.to_string()))?;
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| {
            if let Some(t) = part.header("content-type").map(media_type)
                && !is_xml(&t)
            {
                return Err(ProducerBodyError::UnsupportedMediaType(format!(
                    "part {} has Content-Type {t}",
                    index + 1
                )));
            }
            let resource_id = part.header("pi-resourceid").map(str::to_owned);
            Ok(ProducerMessage { body: part.body, resource_id })
        })
        .collect()
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

fn is_xml(media: &str) -> bool {
    media == "application/xml" || media == "text/xml"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(parts: &[(&str, Option<&str>, &str)]) -> Bytes {
        let mut body = String::new();
        for (content_type, resource_id, xml) in parts {
            body.push_str(&format!("--b\r\ncontent-type: {content_type}\r\n"));
            if let Some(id) = resource_id {
                body.push_str(&format!("pi-resourceid: {id}\r\n"));
            }
            body.push_str(&format!("\r\n{xml}\r\n"));
        }
        body.push_str("--b--\r\n");
        Bytes::from(body)
    }

    #[test]
    fn a_single_message_keeps_the_request_resource_id() {
        let messages = split("text/xml; charset=utf-8", Some(b"abc"), Bytes::from_static(b"<a/>"), 10).expect("split");
        assert_eq!(
            messages,
            vec![ProducerMessage { body: Bytes::from_static(b"<a/>"), resource_id: Some("abc".into()) }]
        );
    }

    #[test]
    fn a_batch_keeps_each_part_resource_id() {
        let body = batch(&[("application/xml", Some("id1"), "<a/>"), ("text/xml", None, "<b/>")]);
        let messages = split("multipart/mixed; boundary=b", Some(b"ignored"), body, 10).expect("split");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].resource_id.as_deref(), Some("id1"));
        assert_eq!(messages[1].resource_id, None);
        assert_eq!(&messages[1].body[..], b"<b/>");
    }

    #[test]
    fn other_media_types_are_refused_naming_the_part() {
        let json = split("application/json", None, Bytes::new(), 10).expect_err("refused");
        assert!(matches!(json, ProducerBodyError::UnsupportedMediaType(ref t) if t.starts_with("application/json")));
        let body = batch(&[("application/xml", None, "<a/>"), ("image/png", None, "x")]);
        let part = split("multipart/mixed; boundary=b", None, body, 10).expect_err("refused");
        assert_eq!(part, ProducerBodyError::UnsupportedMediaType("part 2 has Content-Type image/png".into()));
    }

    #[test]
    fn unusable_batches_are_invalid_bodies() {
        assert!(matches!(split("multipart/mixed", None, Bytes::new(), 10), Err(ProducerBodyError::InvalidBody(_))));
        let three = batch(&[("text/xml", None, "<a/>"); 3]);
        assert!(matches!(split("multipart/mixed; boundary=b", None, three, 2), Err(ProducerBodyError::InvalidBody(_))));
    }
}
