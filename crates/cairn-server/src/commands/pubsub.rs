//! Pub/sub commands: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH` and
//! `PUBSUB`, over the registry in `crate::pubsub`. A client with a subscription is in subscribed mode: under
//! RESP2 it may then run only these commands, `PING` and `QUIT`, as in Redis.

use std::sync::Arc;

use bytes::Bytes;

use super::strings::at;
use super::{is, Ctx};
use crate::pubsub::Outbox;
use crate::resp::Reply;

/// A client's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    /// Where its messages wait.
    pub(crate) outbox: Arc<Outbox>,
}

impl Subscriptions {
    /// Channels and patterns subscribed.
    pub(crate) fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// The commands a RESP2 client in subscribed mode may run.
pub(crate) fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit"
    )
}

fn confirmation(kind: &'static str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(kind),
        name.map_or(Reply::Null, |name| Reply::Bulk(name.clone())),
        Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX)),
    ])
}

fn subscribe_generic(ctx: &mut Ctx<'_>, args: &[Bytes], patterns: bool) -> Reply {
    let id = ctx.client.id;
    let mut replies = Vec::new();
    for name in args.iter().skip(1) {
        let state = &mut ctx.client.subscriptions;
        let outbox = Arc::clone(&state.outbox);
        let list = if patterns {
            &mut state.patterns
        } else {
            &mut state.channels
        };
        if !list.contains(name) {
            list.push(name.clone());
            if patterns {
                ctx.shared.pubsub.psubscribe(name, id, &outbox);
            } else {
                ctx.shared.pubsub.subscribe(name, id, &outbox);
            }
        }
        let kind = if patterns { "psubscribe" } else { "subscribe" };
        replies.push(confirmation(kind, Some(name), state.count()));
    }
    Reply::Many(replies)
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, args: &[Bytes], patterns: bool) -> Reply {
    let id = ctx.client.id;
    let kind = if patterns {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let state = &mut ctx.client.subscriptions;
    let names: Vec<Bytes> = if args.len() > 1 {
        args.iter().skip(1).cloned().collect()
    } else if patterns {
        state.patterns.clone()
    } else {
        state.channels.clone()
    };
    if names.is_empty() {
        return Reply::Many(vec![confirmation(kind, None, state.count())]);
    }
    let mut replies = Vec::new();
    for name in &names {
        let list = if patterns {
            &mut state.patterns
        } else {
            &mut state.channels
        };
        list.retain(|existing| existing != name);
        if patterns {
            ctx.shared.pubsub.punsubscribe(name, id);
        } else {
            ctx.shared.pubsub.unsubscribe(name, id);
        }
        replies.push(confirmation(kind, Some(name), state.count()));
    }
    Reply::Many(replies)
}

pub(crate) fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    subscribe_generic(ctx, args, false)
}

pub(crate) fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    subscribe_generic(ctx, args, true)
}

pub(crate) fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    unsubscribe_generic(ctx, args, false)
}

pub(crate) fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    unsubscribe_generic(ctx, args, true)
}

pub(crate) fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (Some(channel), Some(payload)) = (args.get(1), args.get(2)) else {
        return super::wrong_arity("publish");
    };
    let received = ctx.shared.pubsub.publish(channel, payload);
    Reply::Integer(i64::try_from(received).unwrap_or(i64::MAX))
}

/// `PUBSUB CHANNELS [pattern]`, `NUMSUB [channel ...]`, `NUMPAT`, and the shard forms, which
/// find nothing (Cairn has no shard channels).
pub(crate) fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(error) = pubsub_subcommand(args) {
        return error;
    }
    let registry = &ctx.shared.pubsub;
    let sub = at(args, 1);
    if (is(sub, "channels") || is(sub, "shardchannels")) && args.len() > 3 {
        return Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    if is(sub, "channels") {
        let pattern = args.get(2).map(Bytes::as_ref);
        Reply::Array(
            registry
                .active_channels(pattern)
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        )
    } else if is(sub, "numsub") {
        let mut counts = Vec::new();
        for channel in args.iter().skip(2) {
            counts.push(Reply::Bulk(channel.clone()));
            let subscribers = registry.subscribers(channel);
            counts.push(Reply::Integer(
                i64::try_from(subscribers).unwrap_or(i64::MAX),
            ));
        }
        Reply::Array(counts)
    } else if is(sub, "numpat") {
        Reply::Integer(i64::try_from(registry.distinct_patterns()).unwrap_or(i64::MAX))
    } else if is(sub, "shardnumsub") {
        Reply::Array(
            args.iter()
                .skip(2)
                .flat_map(|channel| [Reply::Bulk(channel.clone()), Reply::Integer(0)])
                .collect(),
        )
    } else {
        Reply::Array(Vec::new())
    }
}

/// Redis's errors for a `PUBSUB` subcommand it does not have, or of the wrong arity in its
/// command table; checked also as `MULTI` queues the command, as Redis checks them.
pub(crate) fn pubsub_subcommand(args: &[Bytes]) -> Result<(), Reply> {
    let sub = at(args, 1);
    let arity_fits = match String::from_utf8_lossy(sub).to_ascii_lowercase().as_str() {
        "channels" | "shardchannels" | "numsub" | "shardnumsub" => true,
        "numpat" => args.len() == 2,
        _ => {
            return Err(Reply::err(format!(
                "unknown subcommand '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(sub)
            )))
        }
    };
    if arity_fits {
        Ok(())
    } else {
        Err(Reply::err(format!(
            "wrong number of arguments for 'pubsub|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )))
    }
}

/// Ends every subscription of a closing connection.
pub(crate) fn release(ctx_shared: &crate::state::Shared, client: &mut super::Client) {
    let id = client.id;
    let state = &mut client.subscriptions;
    for channel in state.channels.drain(..) {
        ctx_shared.pubsub.unsubscribe(&channel, id);
    }
    for pattern in state.patterns.drain(..) {
        ctx_shared.pubsub.punsubscribe(&pattern, id);
    }
}

/// `PING` in subscribed mode under RESP2: `["pong", message]`.
pub(crate) fn subscribed_ping(args: &[Bytes]) -> Reply {
    Reply::Push(vec![Reply::bulk("pong"), Reply::bulk(at(args, 1))])
}
