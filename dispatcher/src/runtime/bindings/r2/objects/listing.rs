//! Listing a bucket: keys in byte order (SQLite compares text with `memcmp`, and UTF-8
//! byte order is code point order, the order of Rust's `str` too), those starting with a
//! prefix being the range [prefix, `prefix_end(prefix)`). With a delimiter, the keys that
//! hold it after the prefix are rolled up into their common prefix, listed once, and the
//! walk jumps past all of them. A page's cursor is where the next page starts (an
//! inclusive lower bound, hex-encoded): the successor of its last key, or the end of its
//! last rolled-up prefix.

use rusqlite::{Connection, params};

use super::{META_COLUMNS, ObjectMeta, ObjectStore, R2Error, check_bucket, meta_from_row};

/// The most (and default) objects + prefixes on a page.
pub const MAX_LIST_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: Option<String>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
    pub delimiter: Option<String>,
    /// 1 to `MAX_LIST_LIMIT` (outside that range, clamped); `MAX_LIST_LIMIT` when `None`.
    pub limit: Option<u32>,
}

#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes (ending with the delimiter) of the keys rolled up, in order.
    pub delimited_prefixes: Vec<String>,
    /// More follows, from `cursor`.
    pub truncated: bool,
    pub cursor: Option<String>,
}

impl ObjectStore {
    /// A page of the keys of `bucket` after `options.cursor` that start with
    /// `options.prefix`, rolled up at `options.delimiter`.
    pub fn list(
        &self,
        owner: &str,
        bucket: &str,
        options: ListOptions,
    ) -> Result<ListPage, R2Error> {
        check_bucket(bucket);
        let limit = options
            .limit
            .unwrap_or(MAX_LIST_LIMIT)
            .clamp(1, MAX_LIST_LIMIT) as usize;
        let prefix = options.prefix.unwrap_or_default();
        let delimiter = options.delimiter.filter(|d| !d.is_empty());
        let end = prefix_end(&prefix);
        let mut from = match options.cursor {
            Some(cursor) => decode_cursor(&cursor)?.max(prefix.clone()),
            None => prefix.clone(),
        };

        let conn = self.conn();
        let mut page = ListPage::default();
        let mut listed = 0;
        'walk: while listed < limit {
            let batch = keys_in(&conn, owner, bucket, &from, end.as_deref(), limit - listed)?;
            let exhausted = batch.len() < limit - listed;
            for meta in batch {
                let rolled_up = delimiter.as_deref().and_then(|delimiter| {
                    let after = &meta.key[prefix.len()..];
                    after
                        .find(delimiter)
                        .map(|at| meta.key[..prefix.len() + at + delimiter.len()].to_string())
                });
                listed += 1;
                match rolled_up {
                    Some(common) => {
                        let next = prefix_end(&common);
                        page.delimited_prefixes.push(common);
                        match next {
                            Some(next) => from = next,
                            // Nothing sorts after it.
                            None => return Ok(page),
                        }
                        // The rest of the batch may be under the same prefix: query again.
                        continue 'walk;
                    }
                    None => {
                        from = successor(&meta.key);
                        page.objects.push(meta);
                    }
                }
            }
            if exhausted {
                return Ok(page);
            }
        }
        if !keys_in(&conn, owner, bucket, &from, end.as_deref(), 1)?.is_empty() {
            page.truncated = true;
            page.cursor = Some(hex::encode(from));
        }
        Ok(page)
    }
}

/// Up to `limit` objects of the bucket with keys in [from, end), in order.
fn keys_in(
    conn: &Connection,
    owner: &str,
    bucket: &str,
    from: &str,
    end: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<ObjectMeta>> {
    conn.prepare_cached(&format!(
        "SELECT {META_COLUMNS} FROM objects
         WHERE owner = ?1 AND bucket = ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4)
         ORDER BY key LIMIT ?5"
    ))?
    .query_map(
        params![owner, bucket, from, end, limit as i64],
        meta_from_row,
    )?
    .collect()
}

fn decode_cursor(cursor: &str) -> Result<String, R2Error> {
    let bytes = hex::decode(cursor).map_err(|_| R2Error::InvalidCursor)?;
    String::from_utf8(bytes).map_err(|_| R2Error::InvalidCursor)
}

/// The first string after `key` in byte order.
fn successor(key: &str) -> String {
    format!("{key}\0")
}

/// The first string after every string starting with `prefix`: `prefix` with its last
/// character that has a successor replaced by it; `None` when nothing sorts after them
/// all (an empty prefix, or one of `char::MAX` only).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut end = prefix.to_string();
    while let Some(last) = end.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            _ => char::from_u32(last as u32 + 1),
        };
        if let Some(next) = next {
            end.push(next);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        let end = prefix_end("ab").unwrap();
        for key in ["ab", "ab\0", "ab\u{10FFFF}x", "abz"] {
            assert!(key >= "ab" && key < end.as_str(), "{key:?}");
        }
        for key in ["aa\u{10FFFF}", "ac", "b"] {
            assert!(!(key >= "ab" && key < end.as_str()), "{key:?}");
        }
    }
}
