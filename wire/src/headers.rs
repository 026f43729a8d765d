//! Names of the ICOM and pixstream extension headers, in one place.

use http::HeaderName;

/// Path of the next request of a stream (`/api/v1/out/{ispb}/stream/{token}`).
pub const PI_PULL_NEXT: HeaderName = HeaderName::from_static("pi-pull-next");
/// Stable id of a message; per part in multipart bodies.
pub const PI_RESOURCE_ID: HeaderName = HeaderName::from_static("pi-resourceid");
/// The message's seq in its ISPB's log.
pub const PIX_SEQUENCE: HeaderName = HeaderName::from_static("pix-sequence");
/// The AppHdr `MsgDefIdr` of the message.
pub const PIX_MESSAGE_TYPE: HeaderName = HeaderName::from_static("pix-message-type");
/// When the message was appended, UTC `YYYY-MM-DDThh:mm:ss.sssZ`.
pub const PIX_ENQUEUED_AT: HeaderName = HeaderName::from_static("pix-enqueued-at");
/// `<open>/<limit>` stream slots of the ISPB.
pub const PIX_STREAM_SLOTS: HeaderName = HeaderName::from_static("pix-stream-slots");
/// Marks messages served by a compliance replay stream.
pub const PIX_REPLAY: HeaderName = HeaderName::from_static("pix-replay");
