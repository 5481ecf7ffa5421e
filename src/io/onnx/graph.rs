//! [`Graph`]: an ONNX graph under construction. Nodes are appended in the order they run (so
//! the list is topologically sorted by construction), every value gets a fresh name, and
//! constants become initializers. It knows no layer kinds; `super` says what to build.

use super::proto::{self, AttributeProto, NodeProto, TensorProto, attribute_type};

/// The ONNX-ML operator domain (`OneHotEncoder`).
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// Nodes and constant tensors of a graph being built.
#[derive(Debug, Default)]
pub struct Graph {
    /// The nodes, in the order they run.
    pub nodes: Vec<NodeProto>,
    /// The constant tensors.
    pub initializers: Vec<TensorProto>,
    count: usize,
}

impl Graph {
    /// A fresh value name starting with `stem`.
    fn fresh(&mut self, stem: &str) -> String {
        self.count += 1;
        format!("{stem}_{}", self.count)
    }

    /// Adds a float32 constant of shape `dims`; returns its name.
    pub fn f32s(&mut self, stem: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(stem, dims, proto::FLOAT, raw)
    }

    /// Adds a float64 constant of shape `dims`; returns its name.
    pub fn f64s(&mut self, stem: &str, dims: &[usize], values: &[f64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(stem, dims, proto::DOUBLE, raw)
    }

    /// Adds an int64 constant of shape `[values.len()]`; returns its name.
    pub fn i64s(&mut self, stem: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(stem, &[values.len()], proto::INT64, raw)
    }

    fn constant(&mut self, stem: &str, dims: &[usize], data_type: i32, raw: Vec<u8>) -> String {
        let name = self.fresh(stem);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type),
            string_data: Vec::new(),
            name: Some(name.clone()),
            raw_data: Some(raw),
        });
        name
    }

    /// Appends `op(inputs)` of the default domain with `attributes`; returns its output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.node_in("", op, inputs, attributes)
    }

    /// [`Graph::node`] in operator domain `domain` (`""` is the default ONNX domain).
    pub fn node_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: Some(format!("{op}_{}", self.nodes.len())),
            op_type: Some(op.to_string()),
            domain: (!domain.is_empty()).then(|| domain.to_string()),
            attribute: attributes,
        });
        output
    }

    /// Renames the output of the last node to `name` (a graph output's fixed name).
    pub fn name_last_output(&mut self, name: &str) {
        if let Some(node) = self.nodes.last_mut() {
            node.output = vec![name.to_string()];
        }
    }
}

fn attribute(name: &str, kind: i32) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(kind),
        ..Default::default()
    }
}

/// A float attribute.
pub fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        f: Some(value),
        ..attribute(name, attribute_type::FLOAT)
    }
}

/// An int attribute.
pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: Some(value),
        ..attribute(name, attribute_type::INT)
    }
}

/// A list-of-ints attribute.
pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..attribute(name, attribute_type::INTS)
    }
}

/// A list-of-strings attribute.
pub fn strings(name: &str, values: &[String]) -> AttributeProto {
    AttributeProto {
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attribute(name, attribute_type::STRINGS)
    }
}
