//! Just enough of the ONNX file format to append nodes to a model's graph,
//! read its initializers and set its metadata — what `vireid adapt` needs to
//! write a self-describing model on the box, where there is no Python.
//!
//! An ONNX file is a protobuf `ModelProto`. This module works on the wire
//! format: a message is a list of fields (number, wire type, payload), and a
//! field it does not touch is copied byte for byte, so nothing it does not
//! understand (quantization annotations, functions, training info) is lost.
//! Field numbers are those of `onnx/onnx.proto` (IR version 3 and later).
//!
//! It never needs the ONNX Runtime library: the portable build has it too.

use std::fmt;

/// A malformed file, or a graph without what an edit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError(pub String);

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GraphError {}

fn err<T>(what: impl Into<String>) -> Result<T, GraphError> {
    Err(GraphError(what.into()))
}

// ModelProto fields.
const MODEL_GRAPH: u32 = 7;
const MODEL_METADATA: u32 = 14;
// GraphProto fields.
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const GRAPH_OUTPUT: u32 = 12;
// TensorProto data types.
pub const FLOAT: i64 = 1;
pub const INT64: i64 = 7;

/// One protobuf field: its number and its payload as it was on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub number: u32,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(Vec<u8>),
    Fixed32([u8; 4]),
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, GraphError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else { return err("truncated varint") };
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    err("varint longer than 10 bytes")
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The fields of one message, in file order.
pub fn parse(buf: &[u8]) -> Result<Vec<Field>, GraphError> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let number = (key >> 3) as u32;
        if number == 0 {
            return err("field number 0: not a protobuf message");
        }
        let take = |pos: &mut usize, n: usize| -> Result<Vec<u8>, GraphError> {
            let end =
                pos.checked_add(n).filter(|&e| e <= buf.len()).ok_or_else(|| GraphError("truncated field".into()))?;
            let bytes = buf[*pos..end].to_vec();
            *pos = end;
            Ok(bytes)
        };
        let value = match key & 7 {
            0 => Value::Varint(read_varint(buf, &mut pos)?),
            1 => Value::Fixed64(take(&mut pos, 8)?.try_into().expect("8 bytes")),
            2 => {
                let n = read_varint(buf, &mut pos)? as usize;
                Value::Bytes(take(&mut pos, n)?)
            }
            5 => Value::Fixed32(take(&mut pos, 4)?.try_into().expect("4 bytes")),
            w => return err(format!("wire type {w} (groups are not used by ONNX)")),
        };
        fields.push(Field { number, value });
    }
    Ok(fields)
}

/// The wire bytes of a message's fields.
pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        let wire = match f.value {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        };
        write_varint(&mut out, (u64::from(f.number) << 3) | wire);
        match &f.value {
            Value::Varint(v) => write_varint(&mut out, *v),
            Value::Fixed64(b) => out.extend_from_slice(b),
            Value::Bytes(b) => {
                write_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Fixed32(b) => out.extend_from_slice(b),
        }
    }
    out
}

fn bytes(number: u32, b: impl Into<Vec<u8>>) -> Field {
    Field { number, value: Value::Bytes(b.into()) }
}

fn varint(number: u32, v: i64) -> Field {
    Field { number, value: Value::Varint(v as u64) }
}

fn string_of(fields: &[Field], number: u32) -> Option<String> {
    fields.iter().find_map(|f| match (&f.value, f.number == number) {
        (Value::Bytes(b), true) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    })
}

/// A graph node: `op_type(inputs) -> outputs`, with attributes.
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<Attribute>,
}

pub enum Attribute {
    Int(&'static str, i64),
    Ints(&'static str, Vec<i64>),
}

impl Node {
    fn encode(&self) -> Vec<u8> {
        let mut f: Vec<Field> = self.inputs.iter().map(|i| bytes(1, i.as_bytes())).collect();
        f.extend(self.outputs.iter().map(|o| bytes(2, o.as_bytes())));
        f.push(bytes(3, self.name.as_bytes()));
        f.push(bytes(4, self.op_type.as_bytes()));
        for a in &self.attributes {
            // AttributeProto: name 1, i 3, ints 8, type 20 (INT = 2, INTS = 7).
            let attr = match a {
                Attribute::Int(name, v) => vec![bytes(1, name.as_bytes()), varint(3, *v), varint(20, 2)],
                Attribute::Ints(name, vs) => {
                    let mut a = vec![bytes(1, name.as_bytes())];
                    a.extend(vs.iter().map(|v| varint(8, *v)));
                    a.push(varint(20, 7));
                    a
                }
            };
            f.push(bytes(5, encode(&attr)));
        }
        encode(&f)
    }
}

/// A constant tensor stored in the graph (`TensorProto`, raw little-endian data).
pub struct Initializer {
    pub name: String,
    pub dims: Vec<i64>,
    pub data: TensorData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

impl Initializer {
    fn encode(&self) -> Vec<u8> {
        let mut f: Vec<Field> = self.dims.iter().map(|&d| varint(1, d)).collect();
        let (kind, raw): (i64, Vec<u8>) = match &self.data {
            TensorData::Float(v) => (FLOAT, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TensorData::Int64(v) => (INT64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        f.push(varint(2, kind));
        f.push(bytes(8, self.name.as_bytes()));
        f.push(bytes(9, raw));
        encode(&f)
    }

    fn decode(buf: &[u8]) -> Result<Initializer, GraphError> {
        let fields = parse(buf)?;
        let mut dims = Vec::new();
        let (mut kind, mut raw, mut floats) = (0i64, None, Vec::new());
        for f in &fields {
            match (f.number, &f.value) {
                (1, Value::Varint(d)) => dims.push(*d as i64),
                (1, Value::Bytes(packed)) => {
                    let mut p = 0;
                    while p < packed.len() {
                        dims.push(read_varint(packed, &mut p)? as i64);
                    }
                }
                (2, Value::Varint(t)) => kind = *t as i64,
                (9, Value::Bytes(b)) => raw = Some(b.clone()),
                (4, Value::Bytes(b)) => {
                    floats.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))))
                }
                (4, Value::Fixed32(b)) => floats.push(f32::from_le_bytes(*b)),
                _ => {}
            }
        }
        let name = string_of(&fields, 8).unwrap_or_default();
        let data = match (kind, raw) {
            (FLOAT, Some(r)) => {
                TensorData::Float(r.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect())
            }
            (FLOAT, None) => TensorData::Float(floats),
            (INT64, Some(r)) => {
                TensorData::Int64(r.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8"))).collect())
            }
            (k, _) => return err(format!("initializer {name}: data type {k} is not float or int64")),
        };
        Ok(Initializer { name, dims, data })
    }
}

/// A model file opened for editing.
pub struct Model {
    fields: Vec<Field>,
    graph: Vec<Field>,
}

impl Model {
    pub fn parse(file: &[u8]) -> Result<Model, GraphError> {
        let fields = parse(file).map_err(|e| GraphError(format!("not an ONNX model ({e})")))?;
        let graph = fields
            .iter()
            .find_map(|f| match (&f.value, f.number == MODEL_GRAPH) {
                (Value::Bytes(b), true) => Some(parse(b)),
                _ => None,
            })
            .ok_or_else(|| GraphError("not an ONNX model (no graph)".into()))?
            .map_err(|e| GraphError(format!("the graph cannot be read ({e})")))?;
        Ok(Model { fields, graph })
    }

    fn names(&self, number: u32) -> Vec<String> {
        self.graph
            .iter()
            .filter(|f| f.number == number)
            .filter_map(|f| match &f.value {
                Value::Bytes(b) => parse(b).ok().and_then(|vi| string_of(&vi, 1)),
                _ => None,
            })
            .collect()
    }

    /// The version of the default ("ai.onnx") operator set the model imports.
    pub fn opset(&self) -> Option<i64> {
        // ModelProto.opset_import = 8: OperatorSetIdProto { domain 1, version 2 }
        self.fields.iter().filter(|f| f.number == 8).find_map(|f| match &f.value {
            Value::Bytes(b) => {
                let set = parse(b).ok()?;
                let domain = string_of(&set, 1).unwrap_or_default();
                let version = set.iter().find_map(|f| match (f.number, &f.value) {
                    (2, Value::Varint(v)) => Some(*v as i64),
                    _ => None,
                })?;
                (domain.is_empty() || domain == "ai.onnx").then_some(version)
            }
            _ => None,
        })
    }

    pub fn input_names(&self) -> Vec<String> {
        self.names(GRAPH_INPUT)
    }

    pub fn output_names(&self) -> Vec<String> {
        self.names(GRAPH_OUTPUT)
    }

    /// The `metadata_props` entries, in file order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.number == MODEL_METADATA)
            .filter_map(|f| match &f.value {
                Value::Bytes(b) => parse(b)
                    .ok()
                    .map(|kv| (string_of(&kv, 1).unwrap_or_default(), string_of(&kv, 2).unwrap_or_default())),
                _ => None,
            })
            .collect()
    }

    /// Sets (replaces or adds) one metadata entry.
    pub fn set_metadata(&mut self, key: &str, value: &str) {
        let entry = bytes(MODEL_METADATA, encode(&[bytes(1, key.as_bytes()), bytes(2, value.as_bytes())]));
        let existing = self.fields.iter().position(|f| {
            f.number == MODEL_METADATA && matches!(&f.value, Value::Bytes(b) if parse(b).ok().and_then(|kv| string_of(&kv, 1)).as_deref() == Some(key))
        });
        match existing {
            Some(i) => self.fields[i] = entry,
            None => self.fields.push(entry),
        }
    }

    /// The initializer called `name`, if the graph has one.
    pub fn initializer(&self, name: &str) -> Result<Option<Initializer>, GraphError> {
        for f in self.graph.iter().filter(|f| f.number == GRAPH_INITIALIZER) {
            if let Value::Bytes(b) = &f.value {
                if string_of(&parse(b)?, 8).as_deref() == Some(name) {
                    return Initializer::decode(b).map(Some);
                }
            }
        }
        Ok(None)
    }

    pub fn add_node(&mut self, node: &Node) {
        self.graph.push(bytes(GRAPH_NODE, node.encode()));
    }

    pub fn add_initializer(&mut self, init: &Initializer) {
        self.graph.push(bytes(GRAPH_INITIALIZER, init.encode()));
    }

    /// Adds a graph input: a float tensor `[N]` with a symbolic batch dimension.
    pub fn add_float_vector_input(&mut self, name: &str) {
        // ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1, shape 2: { dim 1: { dim_param 2 } } } } }
        let dim = encode(&[bytes(2, "N")]);
        let shape = encode(&[bytes(1, dim)]);
        let tensor = encode(&[varint(1, FLOAT), bytes(2, shape)]);
        let ty = encode(&[bytes(1, tensor)]);
        self.graph.push(bytes(GRAPH_INPUT, encode(&[bytes(1, name.as_bytes()), bytes(2, ty)])));
    }

    /// Makes `new` the graph's first output, with the type the old first output had
    /// (an appended tail that keeps the shape, as an adapter does).
    pub fn replace_first_output(&mut self, new: &str) -> Result<(), GraphError> {
        let i = self
            .graph
            .iter()
            .position(|f| f.number == GRAPH_OUTPUT)
            .ok_or_else(|| GraphError("the graph has no output".into()))?;
        let Value::Bytes(b) = &self.graph[i].value else { return err("malformed graph output") };
        let mut vi = parse(b)?;
        for f in vi.iter_mut().filter(|f| f.number == 1) {
            f.value = Value::Bytes(new.as_bytes().to_vec());
        }
        self.graph[i] = bytes(GRAPH_OUTPUT, encode(&vi));
        Ok(())
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut fields = self.fields.clone();
        if let Some(g) = fields.iter_mut().find(|f| f.number == MODEL_GRAPH) {
            g.value = Value::Bytes(encode(&self.graph));
        }
        encode(&fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            write_varint(&mut b, v);
            assert_eq!(read_varint(&b, &mut 0).unwrap(), v);
        }
        let fields = vec![
            varint(1, 7),
            bytes(2, "abc"),
            Field { number: 3, value: Value::Fixed32([1, 2, 3, 4]) },
            varint(4, -1),
        ];
        assert_eq!(parse(&encode(&fields)).unwrap(), fields);
        assert!(parse(&[0x0a, 0x05, b'a']).is_err(), "a truncated field is an error");
        assert!(parse(&[0x0b]).is_err(), "wire type 3 (groups) is an error");
        assert!(parse(&[0x80, 0x80]).is_err(), "a truncated varint is an error");
    }

    #[test]
    fn initializers_round_trip() {
        let init = Initializer { name: "w".into(), dims: vec![1, 3], data: TensorData::Float(vec![0.5, -1.0, 2.0]) };
        let back = Initializer::decode(&init.encode()).unwrap();
        assert_eq!(
            (back.name.as_str(), back.dims.clone(), back.data.clone()),
            ("w", vec![1, 3], TensorData::Float(vec![0.5, -1.0, 2.0]))
        );
        let shape = Initializer { name: "s".into(), dims: vec![2], data: TensorData::Int64(vec![-1, 1]) };
        assert_eq!(Initializer::decode(&shape.encode()).unwrap().data, TensorData::Int64(vec![-1, 1]));
    }

    #[test]
    fn model_edits_keep_what_they_do_not_touch() {
        // A model with an unknown field (99), a graph with one output, and one metadata entry.
        let out = encode(&[bytes(1, "features"), bytes(2, vec![1, 2, 3])]);
        let graph = encode(&[bytes(GRAPH_OUTPUT, out), bytes(42, "unknown graph field")]);
        let file = encode(&[
            varint(1, 8),
            bytes(MODEL_GRAPH, graph),
            bytes(MODEL_METADATA, encode(&[bytes(1, "k"), bytes(2, "v")])),
            bytes(99, "x"),
        ]);
        let mut m = Model::parse(&file).unwrap();
        assert_eq!(m.output_names(), vec!["features"]);
        assert_eq!(m.metadata(), vec![("k".into(), "v".into())]);
        m.set_metadata("k", "v2");
        m.set_metadata("new", "n");
        m.replace_first_output("adapted").unwrap();
        m.add_float_vector_input("modality");
        m.add_initializer(&Initializer { name: "c".into(), dims: vec![1], data: TensorData::Float(vec![3.0]) });
        let back = Model::parse(&m.to_bytes()).unwrap();
        assert_eq!(back.output_names(), vec!["adapted"]);
        assert_eq!(back.input_names(), vec!["modality"]);
        assert_eq!(back.metadata(), vec![("k".into(), "v2".into()), ("new".into(), "n".into())]);
        assert_eq!(back.initializer("c").unwrap().unwrap().data, TensorData::Float(vec![3.0]));
        assert!(back.initializer("nope").unwrap().is_none());
        let top = parse(&m.to_bytes()).unwrap();
        assert!(top.iter().any(|f| f.number == 99), "unknown model fields survive");
        assert!(back.graph.iter().any(|f| f.number == 42), "unknown graph fields survive");
        assert!(Model::parse(b"not a model at all").is_err());
    }
}
