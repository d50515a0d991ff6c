//! `Microsoft.Network/networkWatchers`: the watchers of the lab's regions
//! (`diag::watcher`) and their actions. Each action is one arm of
//! [`Daemon::network_watcher`], named by ARM's lower-cased last path word.

use axum::http::Method;
use serde_json::{json, Value};

use super::daemon::{ApiError, Daemon};
use crate::diag::watcher;
use crate::model::{AzureError, ResourceId};

impl Daemon {
    /// `GET /subscriptions/S/providers/Microsoft.Network/networkWatchers`, or
    /// of one resource group (only `NetworkWatcherRG` holds any).
    pub async fn network_watcher_list(&self, subscription: &str, group: Option<&str>) -> Value {
        let state = self.state.lock().await;
        let value = match group {
            Some(g) if !g.eq_ignore_ascii_case(watcher::WATCHER_GROUP) => Vec::new(),
            _ => watcher::list(&state, Some(subscription)),
        };
        json!({ "value": value })
    }

    /// A watcher (`rest` empty) or one of its actions and children: `rest` is
    /// the path after the watcher's name, as written.
    pub async fn network_watcher(
        &self,
        method: &Method,
        id: &ResourceId,
        rest: &[&str],
        _body: &Value,
    ) -> Result<Value, ApiError> {
        let location = {
            let state = self.state.lock().await;
            watcher::resolve(&state, id)?
        };
        let action = rest.first().map(|a| a.to_ascii_lowercase());
        match (action.as_deref(), method) {
            (None, &Method::GET) => Ok(watcher::view(&id.subscription, &location)),
            _ => Err(AzureError::bad_request(
                "InvalidRequest",
                format!(
                    "{method} {}/{} is not an operation of a network watcher",
                    id,
                    rest.join("/")
                ),
            )
            .into()),
        }
    }
}
