//! Listing: prefixes, delimiters, and paging with a cursor until the end.

use super::*;

#[tokio::test]
async fn list_filters_by_prefix_and_rolls_up_at_the_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for key in [
        "a.txt",
        "photos/2024/1.jpg",
        "photos/2024/2.jpg",
        "photos/2025/1.jpg",
        "photos/cover.jpg",
        "photos0",
        "videos/x.mp4",
    ] {
        put(&store, "c1", key, key.as_bytes()).await;
    }
    let list = |prefix: Option<&str>, delimiter: Option<&str>| {
        store
            .list(
                "c1",
                "photos",
                ListOptions {
                    prefix: prefix.map(Into::into),
                    delimiter: delimiter.map(Into::into),
                    ..ListOptions::default()
                },
            )
            .unwrap()
    };
    let names = |page: &ListPage| {
        page.objects
            .iter()
            .map(|o| o.key.clone())
            .collect::<Vec<_>>()
    };

    let page = list(Some("photos/"), None);
    assert_eq!(
        names(&page),
        [
            "photos/2024/1.jpg",
            "photos/2024/2.jpg",
            "photos/2025/1.jpg",
            "photos/cover.jpg"
        ]
    );
    assert!(page.delimited_prefixes.is_empty() && !page.truncated && page.cursor.is_none());
    assert_eq!(page.objects[0].size, 17);

    let page = list(None, Some("/"));
    assert_eq!(names(&page), ["a.txt", "photos0"]);
    assert_eq!(page.delimited_prefixes, ["photos/", "videos/"]);

    let page = list(Some("photos/"), Some("/"));
    assert_eq!(names(&page), ["photos/cover.jpg"]);
    assert_eq!(page.delimited_prefixes, ["photos/2024/", "photos/2025/"]);
    assert!(!page.truncated);

    assert!(list(Some("zzz"), Some("/")).objects.is_empty());
    assert!(matches!(
        store.list(
            "c1",
            "photos",
            ListOptions {
                cursor: Some("not hex".into()),
                ..ListOptions::default()
            }
        ),
        Err(R2Error::InvalidCursor)
    ));
}

/// Every entry (object key or delimited prefix) of the pages from the first to the last.
fn list_all(store: &ObjectStore, delimiter: Option<&str>, limit: u32) -> Vec<String> {
    let mut entries = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = store
            .list(
                "c1",
                "photos",
                ListOptions {
                    prefix: None,
                    cursor: cursor.take(),
                    delimiter: delimiter.map(Into::into),
                    limit: Some(limit),
                },
            )
            .unwrap();
        let count = page.objects.len() + page.delimited_prefixes.len();
        assert!(count <= limit as usize);
        let mut page_entries: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
        page_entries.extend(page.delimited_prefixes);
        page_entries.sort();
        entries.extend(page_entries);
        assert_eq!(page.truncated, page.cursor.is_some());
        if !page.truncated {
            return entries;
        }
        assert_eq!(count, limit as usize, "only a full page is truncated");
        cursor = page.cursor;
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn list_pages_with_limit_and_cursor_until_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut all = Vec::new();
    for i in 0..25 {
        let key = format!("key-{i:02}");
        put(&store, "c1", &key, b"x").await;
        all.push(key);
    }
    for limit in [1, 7, 25, MAX_LIST_LIMIT] {
        assert_eq!(list_all(&store, None, limit), all, "limit {limit}");
    }

    // With a delimiter, a prefix counts once however many keys it rolls up.
    for dir_name in ["d1", "d2", "d3"] {
        for i in 0..4 {
            put(&store, "c1", &format!("{dir_name}/{i}"), b"y").await;
        }
    }
    let mut expected = vec!["d1/".to_string(), "d2/".into(), "d3/".into()];
    expected.extend(all);
    for limit in [1, 2, 5, 28, 29] {
        assert_eq!(
            list_all(&store, Some("/"), limit),
            expected,
            "limit {limit}"
        );
    }
}
