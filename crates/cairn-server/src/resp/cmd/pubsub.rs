//! SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH.
//!
//! ```text
//! SUBSCRIBE ch [ch ...]    -> one ["subscribe", ch, count] per channel
//! PUBLISH ch message       -> :receivers
//! ```
//!
//! Keyspace notifications arrive on `__keyspace@<db>__:<key>` (message: the
//! event, e.g. `set`) and `__keyevent@<db>__:<event>` (message: the key),
//! where `<db>` is `0` for the `default` store and the store name otherwise.

use super::{Outcome, Spec};
use crate::auth::Role;
use crate::resp::Shared;
use crate::resp::pubsub::{Kind, notification_store};
use crate::resp::reply::Reply;
use crate::resp::session::Session;

fn push(kind: &'static str, name: Option<&[u8]>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::Simple(kind).into_bulk(),
        name.map_or(Reply::Nil, |n| Reply::Bulk(n.to_vec())),
        Reply::Int(count as i64),
    ])
}

impl Reply {
    fn into_bulk(self) -> Reply {
        match self {
            Reply::Simple(s) => Reply::text(s),
            other => other,
        }
    }
}

/// Whether the caller may PUBLISH on `channel` (see [`run`]).
pub(crate) fn may_publish(sess: &Session, channel: &[u8]) -> Result<(), Reply> {
    let Some(principal) = &sess.principal else {
        return Err(Reply::Error("NOAUTH Authentication required.".into()));
    };
    match notification_store(channel) {
        Some(store) if principal.allow(Role::Write, Some(&store)).is_err() => Err(Reply::Error(format!(
            "NOPERM this token may not publish on '{}': it has no write access to that store",
            super::show(channel)
        ))),
        _ => Ok(()),
    }
}

pub(super) fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Outcome {
    let Some(principal) = sess.principal.clone() else {
        return Outcome::Reply(Reply::Error("NOAUTH Authentication required.".into()));
    };
    // Keyspace notification channels belong to their store: publishing on
    // one needs write access to it (a scoped token could otherwise fake
    // another store's events), and only callers who may read the store see
    // them listed.
    let may = |role, channel: &[u8]| {
        notification_store(channel).is_none_or(|store| principal.allow(role, Some(&store)).is_ok())
    };
    let may_read = |channel: &[u8]| may(Role::Read, channel);
    match spec.name {
        "publish" if !may(Role::Write, &args[1]) => Outcome::Reply(Reply::Error(format!(
            "NOPERM this token may not publish on '{}': it has no write access to that store",
            super::show(&args[1])
        ))),
        "publish" => Outcome::Reply(Reply::Int(sh.hub.publish(&args[1], &args[2]) as i64)),
        "pubsub" => Outcome::Reply(match (args[1].to_ascii_uppercase().as_slice(), args.len()) {
            (b"CHANNELS", 2 | 3) => Reply::Array(
                sh.hub
                    .channels(args.get(2).map(Vec::as_slice))
                    .into_iter()
                    .filter(|c| may_read(c))
                    .map(Reply::Bulk)
                    .collect(),
            ),
            (b"NUMSUB", _) => Reply::Array(
                args[2..]
                    .iter()
                    .flat_map(|c| {
                        let n = if may_read(c) { sh.hub.numsub(c) } else { 0 };
                        [Reply::Bulk(c.clone()), Reply::Int(n as i64)]
                    })
                    .collect(),
            ),
            (b"NUMPAT", 2) => Reply::Int(sh.hub.num_patterns() as i64),
            // Redis 7.0's own mix of wordings.
            (b"NUMPAT", _) => super::arity_error("pubsub|numpat"),
            (b"CHANNELS", _) => Reply::err(format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                super::show(&args[1])
            )),
            _ => Reply::err(format!(
                "unknown subcommand '{}'. Try PUBSUB HELP.",
                super::show(&args[1])
            )),
        }),
        "subscribe" | "psubscribe" => {
            let (kind, word) = if spec.name == "subscribe" {
                (Kind::Channel, "subscribe")
            } else {
                (Kind::Pattern, "psubscribe")
            };
            let mut out = Vec::with_capacity(args.len() - 1);
            for name in &args[1..] {
                let (count, rx) = sh.hub.subscribe(sess.id, &principal, kind, name);
                if let Some(rx) = rx {
                    sess.messages = Some(rx);
                }
                sess.subscriptions = count;
                out.push(push(word, Some(name), count));
            }
            Outcome::Many(out)
        }
        _ => {
            let (kind, word) = if spec.name == "unsubscribe" {
                (Kind::Channel, "unsubscribe")
            } else {
                (Kind::Pattern, "punsubscribe")
            };
            let (removed, left) = sh.hub.unsubscribe(sess.id, kind, &args[1..]);
            sess.subscriptions = left;
            if left == 0 {
                sess.messages = None;
            }
            if removed.is_empty() {
                return Outcome::Many(vec![push(word, None, left)]);
            }
            Outcome::Many(removed.iter().map(|(n, c)| push(word, Some(n), *c)).collect())
        }
    }
}
