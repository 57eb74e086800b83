//! A tool plugin: unit conversion, which small models get wrong and a few lines get right.

use hearth_plugin_sdk::{Plugin, Tool};
use serde_json::{Value, json};

struct Calculator;

/// The units as an enum: a model constrained by the schema can only name one that exists.
const PARAMETERS: &str = r#"{"type":"object","properties":{"value":{"type":"number"},"from":{"type":"string","enum":["mm","cm","m","km","in","ft","yd","mi","mg","g","kg","oz","lb","c","f","k"]},"to":{"type":"string","enum":["mm","cm","m","km","in","ft","yd","mi","mg","g","kg","oz","lb","c","f","k"]}},"required":["value","from","to"]}"#;

/// A unit's dimension and how to reach the base unit of that dimension (metre, gram).
fn linear_factor(unit: &str) -> Option<(&'static str, f64)> {
    Some(match unit {
        "mm" => ("length", 0.001),
        "cm" => ("length", 0.01),
        "m" => ("length", 1.0),
        "km" => ("length", 1000.0),
        "in" => ("length", 0.0254),
        "ft" => ("length", 0.3048),
        "yd" => ("length", 0.9144),
        "mi" => ("length", 1609.344),
        "mg" => ("mass", 0.001),
        "g" => ("mass", 1.0),
        "kg" => ("mass", 1000.0),
        "oz" => ("mass", 28.349523125),
        "lb" => ("mass", 453.59237),
        _ => return None,
    })
}

fn to_kelvin(value: f64, unit: &str) -> Option<f64> {
    match unit {
        "c" => Some(value + 273.15),
        "f" => Some((value - 32.0) * 5.0 / 9.0 + 273.15),
        "k" => Some(value),
        _ => None,
    }
}

fn from_kelvin(kelvin: f64, unit: &str) -> Option<f64> {
    match unit {
        "c" => Some(kelvin - 273.15),
        "f" => Some((kelvin - 273.15) * 9.0 / 5.0 + 32.0),
        "k" => Some(kelvin),
        _ => None,
    }
}

fn convert(value: f64, from: &str, to: &str) -> Result<f64, String> {
    let (from, to) = (from.to_ascii_lowercase(), to.to_ascii_lowercase());
    if let (Some(kelvin), true) = (to_kelvin(value, &from), to_kelvin(0.0, &to).is_some()) {
        return Ok(from_kelvin(kelvin, &to).unwrap_or(kelvin));
    }
    match (linear_factor(&from), linear_factor(&to)) {
        (Some((a, fa)), Some((b, fb))) if a == b => Ok(value * fa / fb),
        (Some((a, _)), Some((b, _))) => Err(format!("cannot convert a {a} into a {b}")),
        (None, _) => Err(format!("unknown unit {from:?}")),
        (_, None) => Err(format!("unknown unit {to:?}")),
    }
}

impl Plugin for Calculator {
    fn tools() -> Vec<Tool> {
        vec![Tool::new(
            "convert",
            "Converts a value between units of length, mass or temperature.",
            PARAMETERS,
        )]
    }

    fn call_tool(name: &str, arguments: &str) -> Result<String, String> {
        if name != "convert" {
            return Err(format!("no tool named {name}"));
        }
        let arguments: Value =
            serde_json::from_str(arguments).map_err(|error| format!("arguments: {error}"))?;
        let value = arguments["value"].as_f64().ok_or("`value` must be a number")?;
        let from = arguments["from"].as_str().ok_or("`from` must be a unit")?;
        let to = arguments["to"].as_str().ok_or("`to` must be a unit")?;
        let converted = convert(value, from, to)?;
        // Rounded to what a reader needs; the model copies the digits it is given.
        let rounded = (converted * 1e6).round() / 1e6;
        Ok(json!({ "value": rounded, "unit": to }).to_string())
    }
}

hearth_plugin_sdk::plugin!(Calculator);
