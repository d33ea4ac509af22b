//! ttrpc's own framing messages (not containerd's API): what every request and
//! response frame carries around the call's payload.

use bytes::Bytes;

/// A call: `ttrpc.Request`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
    /// The caller's deadline as a duration from sending; 0 for none.
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    /// Like gRPC metadata; a key may repeat.
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A call's answer: `ttrpc.Response`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub status: Option<RpcStatus>,
    #[prost(bytes = "bytes", tag = "2")]
    pub payload: Bytes,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    /// Carried through, never interpreted.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<AnyMessage>,
}

/// `google.protobuf.Any`, as the status details carry it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyMessage {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}
