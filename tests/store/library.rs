//! The lesson library over a real store, on both backends: a search and a folder narrow the
//! lesson list to current revisions, folders are counted, an edit may keep its folder (and
//! its theme), and revisions written before the library's columns existed are still found.

use classcast::domain::design::{Theme, ThemeName};
use classcast::domain::lesson::{LessonContent, SlideInput};
use classcast::domain::library::parse_query;
use classcast::domain::node::Node;
use classcast::store::{FolderCount, LessonEdit, LessonFilter, LessonOrder, Store};
use uuid::Uuid;

use super::{account, Bind, Db};

/// A lesson filed in `folder` with one text slide of `body`.
fn filed(title: &str, folder: Option<&str>, body: &str) -> LessonContent {
    let slide = SlideInput {
        kind: "text".into(),
        body: Some(body.into()),
        ..Default::default()
    };
    LessonContent::parse_whole(title, folder, None, vec![slide]).unwrap()
}

/// The titles of `owner`'s lessons that a search for `q` in `folder` lists, by title.
async fn found(store: &dyn Store, owner: Uuid, q: &str, folder: Option<&str>) -> Vec<String> {
    let filter = LessonFilter {
        words: parse_query(q).unwrap(),
        folder: folder.map(str::to_owned),
    };
    let page = store
        .list_lessons(owner, &filter, LessonOrder::Title, None, 50)
        .await
        .unwrap();
    page.into_iter().map(|l| l.title).collect()
}

fn counts(folders: &[(&str, i64)]) -> Vec<FolderCount> {
    folders
        .iter()
        .map(|(name, lessons)| FolderCount {
            name: (*name).to_owned(),
            lessons: *lessons,
        })
        .collect()
}

pub(super) async fn a_search_and_a_folder_narrow_the_list_to_current_lessons(store: &dyn Store) {
    let owner = account(store, "lib@school.org").await;
    let other = account(store, "other@school.org").await;
    let volcanoes = store
        .create_lesson(
            owner,
            &filed("Volcanoes", Some("Geography"), "Lava and ASH"),
        )
        .await
        .unwrap();
    store
        .create_lesson(owner, &filed("Rivers", Some("Geography"), "Water, no lava"))
        .await
        .unwrap();
    let gone = store
        .create_lesson(owner, &filed("Lava lamps", Some("Physics"), "Wax"))
        .await
        .unwrap();
    store.delete_lesson(owner, gone.id).await.unwrap();
    store
        .create_lesson(other, &filed("Lava of others", Some("Geography"), "ash"))
        .await
        .unwrap();

    assert_eq!(
        found(store, owner, "LAVA", None).await,
        ["Rivers", "Volcanoes"]
    );
    assert_eq!(found(store, owner, "ash lava", None).await, ["Volcanoes"]);
    assert_eq!(
        found(store, owner, "lava", Some("Geography")).await,
        ["Rivers", "Volcanoes"]
    );
    assert!(found(store, owner, "", Some("Physics")).await.is_empty());
    assert_eq!(
        store.lesson_folders(owner).await.unwrap(),
        counts(&[("Geography", 2)])
    );

    // An edit that keeps its folder stays filed; the text searched is the new revision's.
    let edit = LessonEdit {
        expected: None,
        content: filed("Volcanoes", None, "Magma"),
        restored_from: None,
        keep_folder: true,
        keep_theme: false,
    };
    let saved = store.save_lesson(owner, volcanoes.id, edit).await.unwrap();
    assert_eq!(saved.content.folder.as_deref(), Some("Geography"));
    assert_eq!(
        found(store, owner, "magma", Some("Geography")).await,
        ["Volcanoes"]
    );
    assert!(found(store, owner, "ash", None).await.is_empty());
    // One that does not moves the lesson to the folder its content names.
    let edit = LessonEdit {
        expected: None,
        content: filed("Volcanoes", Some("Earth"), "Magma"),
        restored_from: None,
        keep_folder: false,
        keep_theme: false,
    };
    store.save_lesson(owner, volcanoes.id, edit).await.unwrap();
    let read = store.lesson(owner, volcanoes.id).await.unwrap();
    assert_eq!(read.content.folder.as_deref(), Some("Earth"));
    assert_eq!(
        store.lesson_folders(owner).await.unwrap(),
        counts(&[("Earth", 1), ("Geography", 1)])
    );
    // Folders are listed alike on both engines: by name, case aside.
    for folder in ["art", "Zoology", "Art"] {
        store
            .create_lesson(owner, &filed(folder, Some(folder), ""))
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .lesson_folders(owner)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["Art", "art", "Earth", "Geography", "Zoology"]);
}

pub(super) async fn a_lessons_theme_is_stored_and_kept_by_an_edit_that_keeps_it(store: &dyn Store) {
    let owner = account(store, "themed@school.org").await;
    let dark = Theme {
        name: ThemeName::Dark,
        accent: Some("#ffcc00".into()),
    };
    let lesson = store
        .create_lesson(
            owner,
            &LessonContent {
                theme: Some(dark.clone()),
                ..filed("Dark", None, "")
            },
        )
        .await
        .unwrap();
    let read = store.lesson(owner, lesson.id).await.unwrap();
    assert_eq!(read.content.theme.as_ref(), Some(&dark));
    let edit = |keep_theme| LessonEdit {
        expected: None,
        content: filed("Dark", None, "edited"),
        restored_from: None,
        keep_folder: true,
        keep_theme,
    };
    store
        .save_lesson(owner, lesson.id, edit(true))
        .await
        .unwrap();
    let kept = store.lesson(owner, lesson.id).await.unwrap();
    assert_eq!(kept.content.theme.as_ref(), Some(&dark));
    store
        .save_lesson(owner, lesson.id, edit(false))
        .await
        .unwrap();
    let plain = store.lesson(owner, lesson.id).await.unwrap();
    assert_eq!(plain.content.theme, None);
    // Older revisions keep the look they had.
    let first = store
        .revision(owner, lesson.id, lesson.revision)
        .await
        .unwrap();
    assert_eq!(first.theme, Some(dark));
}

pub(super) async fn a_revision_from_before_the_library_is_searched_in_its_stored_text(db: Db) {
    let store = db.open(&Node::new(Uuid::now_v7())).await;
    db.insert_only().await;
    let owner = account(store.as_ref(), "old@school.org").await;
    let id = store
        .create_lesson(owner, &filed("Draft", Some("Old"), "nothing yet"))
        .await
        .unwrap()
        .id;
    // A newer revision as a node of the previous release writes it (or replication brings
    // it): no folder, no search text.
    let old = filed("Photosynthesis", None, "Chlorophyll and LIGHT");
    db.insert(
        "INSERT INTO lesson_revision (id, lesson_id, version, node, author_id, title, title_key,
         slide_count, slides, deleted, restored_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, NULL)",
        &[
            Bind::Id(Uuid::now_v7()),
            Bind::Id(id),
            Bind::Int(i64::MAX >> 1),
            Bind::Id(Uuid::now_v7()),
            Bind::Id(owner),
            Bind::Text(old.title.clone()),
            Bind::Text(old.title_key()),
            Bind::Int(1),
            Bind::Text(serde_json::to_string(&old.slides).unwrap()),
        ],
    )
    .await;
    assert_eq!(
        found(store.as_ref(), owner, "light photosynthesis", None).await,
        ["Photosynthesis"]
    );
    assert!(found(store.as_ref(), owner, "nothing", None)
        .await
        .is_empty());
    assert!(store.lesson_folders(owner).await.unwrap().is_empty());
    db.finish().await;
}
