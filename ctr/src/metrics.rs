//! A task's metrics as `ctr tasks metrics` prints them: the cgroup v1
//! statistics runc's shim reports (`io.containerd.cgroups.v1.Metrics`),
//! read from the protobuf wire by a table of their fields, and printed as a
//! table of a few values or as the JSON Go's `encoding/json` writes for the
//! generated structs (proto field names, zero values left out).

use anyhow::{anyhow, bail};

use crate::gojson::Json;

const V1_URL: &str = "io.containerd.cgroups.v1.Metrics";

#[derive(Clone, Copy)]
enum Kind {
    U64,
    U32,
    Text,
    Message(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    number: u64,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

const fn one(number: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: false,
    }
}

const fn many(number: u64, name: &'static str, kind: Kind) -> Field {
    Field {
        number,
        name,
        kind,
        repeated: true,
    }
}

use Kind::{Message, Text, U32, U64};

const HUGETLB: &[Field] = &[
    one(1, "usage", U64),
    one(2, "max", U64),
    one(3, "failcnt", U64),
    one(4, "pagesize", Text),
];
const PIDS: &[Field] = &[one(1, "current", U64), one(2, "limit", U64)];
const CPU_USAGE: &[Field] = &[
    one(1, "total", U64),
    one(2, "kernel", U64),
    one(3, "user", U64),
    many(4, "per_cpu", U64),
];
const THROTTLE: &[Field] = &[
    one(1, "periods", U64),
    one(2, "throttled_periods", U64),
    one(3, "throttled_time", U64),
];
const CPU: &[Field] = &[
    one(1, "usage", Message(CPU_USAGE)),
    one(2, "throttling", Message(THROTTLE)),
];
const MEMORY_ENTRY: &[Field] = &[
    one(1, "limit", U64),
    one(2, "usage", U64),
    one(3, "max", U64),
    one(4, "failcnt", U64),
];
const MEMORY: &[Field] = &[
    one(1, "cache", U64),
    one(2, "rss", U64),
    one(3, "rss_huge", U64),
    one(4, "mapped_file", U64),
    one(5, "dirty", U64),
    one(6, "writeback", U64),
    one(7, "pg_pg_in", U64),
    one(8, "pg_pg_out", U64),
    one(9, "pg_fault", U64),
    one(10, "pg_maj_fault", U64),
    one(11, "inactive_anon", U64),
    one(12, "active_anon", U64),
    one(13, "inactive_file", U64),
    one(14, "active_file", U64),
    one(15, "unevictable", U64),
    one(16, "hierarchical_memory_limit", U64),
    one(17, "hierarchical_swap_limit", U64),
    one(18, "total_cache", U64),
    one(19, "total_rss", U64),
    one(20, "total_rss_huge", U64),
    one(21, "total_mapped_file", U64),
    one(22, "total_dirty", U64),
    one(23, "total_writeback", U64),
    one(24, "total_pg_pg_in", U64),
    one(25, "total_pg_pg_out", U64),
    one(26, "total_pg_fault", U64),
    one(27, "total_pg_maj_fault", U64),
    one(28, "total_inactive_anon", U64),
    one(29, "total_active_anon", U64),
    one(30, "total_inactive_file", U64),
    one(31, "total_active_file", U64),
    one(32, "total_unevictable", U64),
    one(33, "usage", Message(MEMORY_ENTRY)),
    one(34, "swap", Message(MEMORY_ENTRY)),
    one(35, "kernel", Message(MEMORY_ENTRY)),
    one(36, "kernel_tcp", Message(MEMORY_ENTRY)),
];
const BLKIO_ENTRY: &[Field] = &[
    one(1, "op", Text),
    one(2, "device", Text),
    one(3, "major", U64),
    one(4, "minor", U64),
    one(5, "value", U64),
];
const BLKIO: &[Field] = &[
    many(1, "io_service_bytes_recursive", Message(BLKIO_ENTRY)),
    many(2, "io_serviced_recursive", Message(BLKIO_ENTRY)),
    many(3, "io_queued_recursive", Message(BLKIO_ENTRY)),
    many(4, "io_service_time_recursive", Message(BLKIO_ENTRY)),
    many(5, "io_wait_time_recursive", Message(BLKIO_ENTRY)),
    many(6, "io_merged_recursive", Message(BLKIO_ENTRY)),
    many(7, "io_time_recursive", Message(BLKIO_ENTRY)),
    many(8, "sectors_recursive", Message(BLKIO_ENTRY)),
];
const RDMA_ENTRY: &[Field] = &[
    one(1, "device", Text),
    one(2, "hca_handles", U32),
    one(3, "hca_objects", U32),
];
const RDMA: &[Field] = &[
    many(1, "current", Message(RDMA_ENTRY)),
    many(2, "limit", Message(RDMA_ENTRY)),
];
const NETWORK: &[Field] = &[
    one(1, "name", Text),
    one(2, "rx_bytes", U64),
    one(3, "rx_packets", U64),
    one(4, "rx_errors", U64),
    one(5, "rx_dropped", U64),
    one(6, "tx_bytes", U64),
    one(7, "tx_packets", U64),
    one(8, "tx_errors", U64),
    one(9, "tx_dropped", U64),
];
const CGROUP_STATS: &[Field] = &[
    one(1, "nr_sleeping", U64),
    one(2, "nr_running", U64),
    one(3, "nr_stopped", U64),
    one(4, "nr_uninterruptible", U64),
    one(5, "nr_io_wait", U64),
];
const OOM_CONTROL: &[Field] = &[
    one(1, "oom_kill_disable", U64),
    one(2, "under_oom", U64),
    one(3, "oom_kill", U64),
];
const METRICS_V1: &[Field] = &[
    many(1, "hugetlb", Message(HUGETLB)),
    one(2, "pids", Message(PIDS)),
    one(3, "cpu", Message(CPU)),
    one(4, "memory", Message(MEMORY)),
    one(5, "blkio", Message(BLKIO)),
    one(6, "rdma", Message(RDMA)),
    many(7, "network", Message(NETWORK)),
    one(8, "cgroup_stats", Message(CGROUP_STATS)),
    one(9, "memory_oom_control", Message(OOM_CONTROL)),
];

/// A decoded value: what Go's struct holds for one field.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(u64),
    Text(String),
    Message(Vec<(&'static str, Value)>),
    List(Vec<Value>),
}

/// Decoded metrics.
pub struct Metrics {
    fields: Vec<(&'static str, Value)>,
}

/// Decodes the metrics `Any` a task reports.
pub fn decode(data: &prost_types::Any) -> anyhow::Result<Metrics> {
    if data.type_url != V1_URL {
        if data.type_url == "io.containerd.cgroups.v2.Metrics" {
            bail!("cgroup v2 metrics are not supported by this ctr yet: not implemented");
        }
        bail!("type with url {}: not found", data.type_url);
    }
    Ok(Metrics {
        fields: decode_message(&data.value, METRICS_V1)?,
    })
}

fn varint(bytes: &[u8], at: &mut usize) -> anyhow::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or_else(|| anyhow!("truncated metrics"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("bad varint in metrics")
}

fn decode_message(bytes: &[u8], schema: &[Field]) -> anyhow::Result<Vec<(&'static str, Value)>> {
    let mut found: Vec<(usize, Value)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        let payload: Option<&[u8]> = match wire {
            0 => None,
            1 => {
                at += 8;
                continue;
            }
            5 => {
                at += 4;
                continue;
            }
            2 => {
                let len = varint(bytes, &mut at)? as usize;
                let end = at
                    .checked_add(len)
                    .filter(|e| *e <= bytes.len())
                    .ok_or_else(|| anyhow!("truncated metrics"))?;
                let slice = &bytes[at..end];
                at = end;
                Some(slice)
            }
            _ => bail!("unexpected wire type {wire} in metrics"),
        };
        let scalar = if payload.is_none() {
            Some(varint(bytes, &mut at)?)
        } else {
            None
        };
        let Some(index) = schema.iter().position(|f| f.number == number) else {
            continue;
        };
        let field = schema[index];
        let values: Vec<Value> = match (field.kind, payload, scalar) {
            (U64 | U32, None, Some(n)) => vec![Value::Number(n)],
            // Packed repeated numbers.
            (U64 | U32, Some(packed), _) => {
                let mut out = Vec::new();
                let mut p = 0;
                while p < packed.len() {
                    out.push(Value::Number(varint(packed, &mut p)?));
                }
                out
            }
            (Text, Some(text), _) => vec![Value::Text(String::from_utf8_lossy(text).into_owned())],
            (Message(inner), Some(body), _) => vec![Value::Message(decode_message(body, inner)?)],
            _ => continue,
        };
        for value in values {
            if field.repeated {
                match found.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, Value::List(items))) => items.push(value),
                    _ => found.push((index, Value::List(vec![value]))),
                }
            } else {
                found.retain(|(i, _)| *i != index);
                found.push((index, value));
            }
        }
    }
    found.sort_by_key(|(i, _)| *i);
    Ok(found
        .into_iter()
        .map(|(i, value)| (schema[i].name, value))
        .collect())
}

fn to_json(fields: &[(&'static str, Value)]) -> Json {
    Json::Object(
        fields
            .iter()
            .filter_map(|(name, value)| value_json(value).map(|j| (name.to_string(), j)))
            .collect(),
    )
}

/// Go's `omitempty`: zero numbers, empty strings and empty lists are left
/// out; a present message is written even when empty.
fn value_json(value: &Value) -> Option<Json> {
    match value {
        Value::Number(0) => None,
        Value::Number(n) => Some(Json::Raw(n.to_string())),
        Value::Text(t) if t.is_empty() => None,
        Value::Text(t) => Some(Json::string(t.as_str())),
        Value::Message(fields) => Some(to_json(fields)),
        Value::List(items) if items.is_empty() => None,
        Value::List(items) => Some(Json::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Number(n) => Json::Raw(n.to_string()),
                    Value::Message(fields) => to_json(fields),
                    Value::Text(t) => Json::string(t.as_str()),
                    Value::List(_) => Json::Array(Vec::new()),
                })
                .collect(),
        )),
    }
}

impl Metrics {
    fn at(&self, path: &[&str]) -> Option<&Value> {
        let mut fields = &self.fields;
        let mut found = None;
        for (depth, name) in path.iter().enumerate() {
            let value = fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
            if depth + 1 == path.len() {
                found = Some(value);
            } else if let Value::Message(inner) = value {
                fields = inner;
            } else {
                return None;
            }
        }
        found
    }

    fn number(&self, path: &[&str]) -> u64 {
        match self.at(path) {
            Some(Value::Number(n)) => *n,
            _ => 0,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.at(&[name]).is_some()
    }

    /// `METRIC VALUE` rows (`printCgroupMetricsTable`).
    pub fn table(&self) -> String {
        let mut out = String::from("METRIC\tVALUE\t\n");
        if self.has("memory") {
            out += &format!(
                "memory.usage_in_bytes\t{}\t\n",
                self.number(&["memory", "usage", "usage"])
            );
            out += &format!(
                "memory.limit_in_bytes\t{}\t\n",
                self.number(&["memory", "usage", "limit"])
            );
            out += &format!(
                "memory.stat.cache\t{}\t\n",
                self.number(&["memory", "total_cache"])
            );
        }
        if self.has("cpu") {
            out += &format!(
                "cpuacct.usage\t{}\t\n",
                self.number(&["cpu", "usage", "total"])
            );
            let per_cpu: Vec<String> = match self.at(&["cpu", "usage", "per_cpu"]) {
                Some(Value::List(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::Number(n) => n.to_string(),
                        _ => String::new(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            out += &format!("cpuacct.usage_percpu\t[{}]\t\n", per_cpu.join(" "));
        }
        if self.has("pids") {
            out += &format!("pids.current\t{}\t\n", self.number(&["pids", "current"]));
            out += &format!("pids.limit\t{}\t\n", self.number(&["pids", "limit"]));
        }
        out
    }

    /// `json.MarshalIndent(metrics, "", "  ")`.
    pub fn json(&self) -> Json {
        to_json(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, wire: u64) -> Vec<u8> {
        let mut key = (number << 3) | wire;
        let mut out = Vec::new();
        while key >= 0x80 {
            out.push((key as u8) | 0x80);
            key >>= 7;
        }
        out.push(key as u8);
        out
    }

    fn message(number: u64, body: &[u8]) -> Vec<u8> {
        let mut out = field(number, 2);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn decodes_the_v1_fields_ctr_prints() {
        // pids{current: 1}, cpu{usage{total: 5, per_cpu: [2, 3]}}, memory{usage{usage: 7}}
        let pids = [field(1, 0), vec![1]].concat();
        let usage = [field(1, 0), vec![5], message(4, &[2, 3])].concat();
        let cpu = message(1, &usage);
        let memory = message(33, &[field(2, 0), vec![7]].concat());
        let bytes = [message(2, &pids), message(3, &cpu), message(4, &memory)].concat();
        let metrics = decode(&prost_types::Any {
            type_url: V1_URL.into(),
            value: bytes,
        })
        .unwrap();
        assert_eq!(
            metrics.table(),
            "METRIC\tVALUE\t\nmemory.usage_in_bytes\t7\t\nmemory.limit_in_bytes\t0\t\n\
             memory.stat.cache\t0\t\ncpuacct.usage\t5\t\ncpuacct.usage_percpu\t[2 3]\t\n\
             pids.current\t1\t\npids.limit\t0\t\n"
        );
        assert_eq!(
            metrics.json().to_compact(),
            r#"{"pids":{"current":1},"cpu":{"usage":{"total":5,"per_cpu":[2,3]}},"memory":{"usage":{"usage":7}}}"#
        );
    }
}
