//! Retention: which of a stream's oldest segments a [`Retention`] deletes, as a pure
//! function of what the stream knows about its segments, and what a pass did.
//!
//! Guarantees of `plan`: only a prefix of the segments is chosen, never the last one (the
//! log appends to it), never more than the pass's budget, and only segments whose successor's
//! first batch is known (durable): the new first offset is that batch's first offset, so
//! everything below it is durable and the first offset never passes the recovered end. With
//! `respect_groups` the new first offset never passes the lowest committed offset. The first
//! offset only grows: a plan never moves it below the current one.

use super::options::Retention;

/// What one segment contributes to a retention decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    /// The first offset and timestamp of its first durable batch; `None` when it holds none.
    pub first: Option<(u64, u64)>,
    /// Its length on disk.
    pub file_bytes: u64,
}

/// The stream's state a plan depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanInput {
    /// The current first readable offset.
    pub first_offset: u64,
    /// The end of what is readable.
    pub end_offset: u64,
    /// The store clock's now.
    pub now_ms: u64,
    /// The lowest committed offset over the stream's groups (when groups are respected).
    pub groups_floor: Option<u64>,
    /// Most segments to delete.
    pub budget: usize,
}

/// What a plan decided: delete the first `segments` segments and move the first offset to
/// `first_offset`; `more` when the budget stopped it before the policy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub segments: usize,
    pub first_offset: u64,
    pub more: bool,
}

/// The segments `retention` deletes, oldest first; `None` when it deletes none.
pub(crate) fn plan(
    retention: &Retention,
    segments: &[SegmentSummary],
    input: &PlanInput,
) -> Option<Plan> {
    let mut bytes_after: u64 = segments
        .iter()
        .map(|segment| segment.file_bytes)
        .fold(0, u64::saturating_add);
    let mut chosen = 0_usize;
    let mut first_offset = input.first_offset;
    let mut more = false;
    for pair in segments.windows(2) {
        let [segment, next] = pair else { break };
        bytes_after = bytes_after.saturating_sub(segment.file_bytes);
        let Some((cut, next_timestamp_ms)) = next.first else {
            break;
        };
        // A segment wholly below the first readable offset holds nothing readable: deleting
        // it changes no offset, whatever the policy says.
        let already_gone = cut <= input.first_offset;
        let by_bytes = retention.max_bytes.is_some_and(|max| bytes_after >= max);
        let by_age = retention
            .max_age_ms
            .is_some_and(|max| input.now_ms.saturating_sub(next_timestamp_ms) > max);
        let by_count = retention
            .max_messages
            .is_some_and(|max| input.end_offset.saturating_sub(cut) >= max);
        let groups_allow =
            !retention.respect_groups || input.groups_floor.is_none_or(|floor| cut <= floor);
        let delete = already_gone || ((by_bytes || by_age || by_count) && groups_allow);
        if !delete || cut > input.end_offset {
            break;
        }
        if chosen >= input.budget {
            more = true;
            break;
        }
        chosen += 1;
        first_offset = first_offset.max(cut);
    }
    (chosen > 0).then_some(Plan {
        segments: chosen,
        first_offset,
        more,
    })
}

/// What `Streams::apply_retention` did, summed over the store's streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segment files deleted.
    pub segments_removed: u64,
    /// Offsets that became unreadable (the first offsets' total move).
    pub messages_removed: u64,
    /// Streams whose pass stopped at `retention_segments_per_pass` with more to delete: call
    /// again (or let the maintenance thread) to continue.
    pub streams_with_more: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(firsts: &[(u64, u64)]) -> Vec<SegmentSummary> {
        firsts
            .iter()
            .map(|&(offset, timestamp_ms)| SegmentSummary {
                first: Some((offset, timestamp_ms)),
                file_bytes: 100,
            })
            .collect()
    }

    fn input(first_offset: u64, end_offset: u64) -> PlanInput {
        PlanInput {
            first_offset,
            end_offset,
            now_ms: 1_000,
            groups_floor: None,
            budget: 100,
        }
    }

    #[test]
    fn each_limit_deletes_a_prefix_and_never_the_last_segment() {
        // Segments start at offsets 0, 10, 20, 30 (stamped 100, 200, 300, 400); end 40.
        let segs = segments(&[(0, 100), (10, 200), (20, 300), (30, 400)]);
        let none = Retention::NONE;
        assert_eq!(plan(&none, &segs, &input(0, 40)), None);
        let count = Retention {
            max_messages: Some(20),
            ..Retention::NONE
        };
        let expected = Plan {
            segments: 2,
            first_offset: 20,
            more: false,
        };
        assert_eq!(plan(&count, &segs, &input(0, 40)), Some(expected));
        let bytes = Retention {
            max_bytes: Some(200),
            ..Retention::NONE
        };
        assert_eq!(plan(&bytes, &segs, &input(0, 40)), Some(expected));
        // Now 1000: segment 0 (next stamped 200, 800 old) and 1 (next 300, 700 old) are older
        // than 650; segment 2 (next 400, 600 old) is not.
        let age = Retention {
            max_age_ms: Some(650),
            ..Retention::NONE
        };
        assert_eq!(plan(&age, &segs, &input(0, 40)), Some(expected));
        let everything = Retention {
            max_messages: Some(0),
            ..Retention::NONE
        };
        let all = plan(&everything, &segs, &input(0, 40));
        assert_eq!(
            all,
            Some(Plan {
                segments: 3,
                first_offset: 30,
                more: false
            })
        );
    }

    #[test]
    fn groups_budget_and_unknown_segments_stop_it() {
        let segs = segments(&[(0, 100), (10, 200), (20, 300), (30, 400)]);
        let everything = Retention {
            max_messages: Some(0),
            respect_groups: true,
            ..Retention::NONE
        };
        let mut guarded = input(0, 40);
        guarded.groups_floor = Some(25);
        assert_eq!(
            plan(&everything, &segs, &guarded).map(|plan| plan.first_offset),
            Some(20)
        );
        guarded.groups_floor = Some(5);
        assert_eq!(plan(&everything, &segs, &guarded), None);
        let mut budget = input(0, 40);
        budget.budget = 1;
        assert_eq!(
            plan(&everything, &segs, &budget),
            Some(Plan {
                segments: 1,
                first_offset: 10,
                more: true
            })
        );
        let mut unknown = segs.clone();
        if let Some(segment) = unknown.get_mut(2) {
            segment.first = None;
        }
        assert_eq!(
            plan(&everything, &unknown, &input(0, 40)).map(|plan| plan.segments),
            Some(1)
        );
        // The first offset never goes down: a truncation already past a cut keeps its place.
        assert_eq!(
            plan(&everything, &segs, &input(35, 40)),
            Some(Plan {
                segments: 3,
                first_offset: 35,
                more: false
            })
        );
    }
}
