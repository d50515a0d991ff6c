//! Who is calling, as the kernel says (SO_PEERCRED on the API socket), not
//! as the request claims. Root may act as any principal (`--principal`).
//! Other Unix users act as the principal the daemon's principal map gives
//! them, and may name another with `--principal` only when the map lists
//! it. Without a map, members of the socket's group act as the lab owner
//! (the group is the trust: README, "The daemon as a service").
//!
//! The map is a JSON object from a Unix user name (or `uid:N`) to the
//! principals that user may act as, the first being its default:
//! `{"alice": ["alice", "reader1"], "uid:4343": ["ci"]}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use crate::model::AzureError;

/// The peer of one API connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// `None` when the kernel could not say (never on a Unix socket).
    pub uid: Option<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Peer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PrincipalMap(BTreeMap<String, Vec<String>>);

impl PrincipalMap {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the principal map {}", path.display()))?;
        let map: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "the principal map {} is not {{\"user\": [\"principal\", ...]}}",
                    path.display()
                )
            })?;
        if let Some((user, _)) = map.iter().find(|(_, p)| p.is_empty()) {
            anyhow::bail!(
                "the principal map {} gives {user} no principal",
                path.display()
            );
        }
        Ok(Self(map))
    }

    fn entry(&self, uid: u32) -> Option<(&str, &[String])> {
        let by_uid = format!("uid:{uid}");
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        self.0
            .get_key_value(&by_uid)
            .or_else(|| name.as_ref().and_then(|n| self.0.get_key_value(n)))
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// The principal a request from `peer` acts as, given the one it asked for
/// (`None`: none named). `map` is `None` when the daemon has no map.
pub fn principal(
    peer: Peer,
    asked: Option<&str>,
    map: Option<&PrincipalMap>,
    owner: &str,
) -> Result<String, AzureError> {
    let refuse = |why: String| AzureError::new(403, "AuthorizationFailed", why);
    let uid = match peer.uid {
        Some(0) => return Ok(asked.unwrap_or(owner).to_string()),
        Some(uid) => uid,
        None => return Err(refuse("the caller's identity is unknown".into())),
    };
    match map {
        None => match asked {
            None => Ok(owner.to_string()),
            Some(p) if p.eq_ignore_ascii_case(owner) => Ok(owner.to_string()),
            Some(p) => Err(refuse(format!(
                "uid {uid} may not act as '{p}': only root chooses its principal, unless the \
                 daemon's principal map (serve --principal-map) lets this user"
            ))),
        },
        Some(map) => {
            let Some((key, allowed)) = map.entry(uid) else {
                return Err(refuse(format!(
                    "uid {uid} has no principal in the daemon's principal map; add it \
                     (\"user\": [\"principal\"]) to call the API"
                )));
            };
            match asked {
                None => Ok(allowed[0].clone()),
                Some(p) => allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(p))
                    .cloned()
                    .ok_or_else(|| {
                        refuse(format!(
                            "{key} may act as {} only, not '{p}' (the daemon's principal map)",
                            allowed.join(", ")
                        ))
                    }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PrincipalMap {
        PrincipalMap(BTreeMap::from([(
            "uid:4343".to_string(),
            vec!["ci".to_string(), "reader1".to_string()],
        )]))
    }

    const ROOT: Peer = Peer { uid: Some(0) };
    const CI: Peer = Peer { uid: Some(4343) };
    const STRANGER: Peer = Peer { uid: Some(4344) };

    #[test]
    fn root_acts_as_anyone_and_others_as_the_map_says() {
        let m = map();
        assert_eq!(principal(ROOT, None, Some(&m), "owner").unwrap(), "owner");
        assert_eq!(principal(ROOT, Some("x"), Some(&m), "owner").unwrap(), "x");
        assert_eq!(principal(CI, None, Some(&m), "owner").unwrap(), "ci");
        assert_eq!(
            principal(CI, Some("READER1"), Some(&m), "owner").unwrap(),
            "reader1"
        );
        let e = principal(CI, Some("owner"), Some(&m), "owner").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "AuthorizationFailed"));
        assert!(e.message.contains("ci, reader1"), "{}", e.message);
        let e = principal(STRANGER, None, Some(&m), "owner").unwrap_err();
        assert!(e.message.contains("uid 4344"), "{}", e.message);
    }

    #[test]
    fn without_a_map_the_group_acts_as_the_owner_and_claims_nothing_else() {
        assert_eq!(principal(CI, None, None, "owner").unwrap(), "owner");
        assert!(principal(CI, Some("owner"), None, "owner").is_ok());
        assert!(principal(CI, Some("reader1"), None, "owner").is_err());
        assert!(principal(Peer { uid: None }, None, None, "owner").is_err());
    }
}
