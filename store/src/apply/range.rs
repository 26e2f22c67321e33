//! etcd's Range semantics over any [`ReadView`]: limit with `more`, count, sorting, revision
//! filters and keys-only. Shared by direct reads and by ranges inside transactions, so both
//! answer exactly alike.

use strata_proto::etcdserverpb::{
    range_request::{SortOrder, SortTarget},
    RangeRequest, RangeResponse, ResponseHeader,
};
use strata_proto::mvccpb::KeyValue;

use crate::error::Result;
use crate::mvcc::ReadView;

pub fn execute(view: &dyn ReadView, r: &RangeRequest) -> Result<RangeResponse> {
    let sort_order = SortOrder::try_from(r.sort_order).unwrap_or(SortOrder::None);
    let sort_target = SortTarget::try_from(r.sort_target).unwrap_or(SortTarget::Key);
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    // Fetch everything when the result must be sorted or filtered first; else one extra for `more`.
    let limit = if sort_order != SortOrder::None || filtered || r.limit <= 0 {
        0
    } else {
        r.limit as usize + 1
    };
    let (mut kvs, count) = view.range_kvs(&r.key, &r.range_end, r.revision, limit, r.count_only)?;

    let keep = |kv: &KeyValue| {
        (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
            && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
            && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
            && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
    };
    if filtered {
        kvs.retain(keep);
    }

    // The view returns keys in ascending order: sort only when that is not what was asked.
    let order = match (sort_target, sort_order) {
        (SortTarget::Key, SortOrder::Ascend) => SortOrder::None,
        (t, SortOrder::None) if t != SortTarget::Key => SortOrder::Ascend,
        (_, o) => o,
    };
    if order != SortOrder::None {
        match sort_target {
            SortTarget::Key => kvs.sort_by(|a, b| a.key.cmp(&b.key)),
            SortTarget::Version => kvs.sort_by_key(|kv| kv.version),
            SortTarget::Create => kvs.sort_by_key(|kv| kv.create_revision),
            SortTarget::Mod => kvs.sort_by_key(|kv| kv.mod_revision),
            SortTarget::Value => kvs.sort_by(|a, b| a.value.cmp(&b.value)),
        }
        if order == SortOrder::Descend {
            kvs.reverse();
        }
    }

    let mut more = false;
    if r.limit > 0 && kvs.len() > r.limit as usize {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value = Default::default();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: view.header_revision(),
            ..Default::default()
        }),
        kvs,
        more,
        count: count as i64,
    })
}
