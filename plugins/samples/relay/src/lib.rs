//! An event handler that publishes derived events: each placed order's total.
//!
//! An order with `"fail_first": true` traps on its first delivery (a panic), so tests can see
//! the host deliver it again and the second delivery succeed.

use hearth_plugin_sdk::{Event, Plugin, events, log};
use serde_json::{Value, json};

struct Relay;

impl Plugin for Relay {
    fn handle_event(event: Event) -> Result<(), String> {
        let order: Value =
            serde_json::from_str(&event.payload).map_err(|error| format!("payload: {error}"))?;
        if order["fail_first"].as_bool() == Some(true) && event.delivery == 1 {
            panic!("failing the first delivery of {} on purpose", event.id);
        }
        let total: f64 = order["items"]
            .as_array()
            .map(|items| {
                let line = |item: &Value| {
                    item["price"].as_f64().unwrap_or(0.0) * item["quantity"].as_f64().unwrap_or(1.0)
                };
                items.iter().map(line).sum()
            })
            .unwrap_or(0.0);
        let derived = json!({ "order": order["order"], "total": total, "source": event.id });
        let id = events::publish("orders.totals", &derived.to_string())?;
        log::info(&format!("order {} totals {total} (event {id})", order["order"]));
        Ok(())
    }
}

hearth_plugin_sdk::plugin!(Relay);
