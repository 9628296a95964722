//! Directory entries: durable only once their directory is fsynced.

mod common;

use std::os::unix::fs::{FileExt, MetadataExt};

use common::{fsync_dir, names, read, write_new, Fixture};

#[test]
fn a_create_is_durable_only_after_its_directory_is_fsynced() {
    let Some(fx) = Fixture::plain() else { return };
    // Data fsynced, directory not: the name is lost (ext4 persists the inode, not the entry).
    write_new(&fx.m("orphan"), b"data").sync_all().unwrap();
    // Directory fsynced, data not: the name stays, empty.
    write_new(&fx.m("named"), b"data");
    fsync_dir(&fx.m(""));
    write_new(&fx.m("late"), b"data").sync_all().unwrap();
    assert_eq!(names(&fx.m("")), ["late", "named", "orphan"], "the trash stays hidden");

    let loss = fx.lose();
    assert_eq!(loss.meta_undone, 1, "{loss:?}");
    assert_eq!(names(&fx.m("")), ["named", "orphan"]);
    assert_eq!(read(&fx.m("orphan")).unwrap(), b"data");
    assert_eq!(read(&fx.m("named")).unwrap(), b"");
    assert_eq!(read(&fx.m("late")), None);
    assert_eq!(read(&fx.b("late")), None, "the backing directory is what the disk kept");
}

#[test]
fn a_rename_is_durable_only_after_its_destination_directory_is_fsynced() {
    let Some(fx) = Fixture::plain() else { return };
    write_new(&fx.m("config"), b"old").sync_all().unwrap();
    fsync_dir(&fx.m(""));

    // Write-tmp, fsync-tmp, rename over, and no directory fsync: the old file comes back.
    write_new(&fx.m("config.tmp"), b"new").sync_all().unwrap();
    std::fs::rename(fx.m("config.tmp"), fx.m("config")).unwrap();
    assert_eq!(read(&fx.m("config")).unwrap(), b"new");
    fx.lose();
    assert_eq!(read(&fx.m("config")).unwrap(), b"old");
    assert_eq!(names(&fx.m("")), ["config"], "the tmp file's create was not durable either");

    // The same with the directory fsync: the new file stays.
    write_new(&fx.m("config.tmp"), b"new").sync_all().unwrap();
    std::fs::rename(fx.m("config.tmp"), fx.m("config")).unwrap();
    fsync_dir(&fx.m(""));
    fx.lose();
    assert_eq!(read(&fx.m("config")).unwrap(), b"new");
    assert_eq!(names(&fx.m("")), ["config"]);
}

#[test]
fn a_rename_across_directories_needs_the_destination_fsynced() {
    let Some(fx) = Fixture::plain() else { return };
    std::fs::create_dir(fx.m("from")).unwrap();
    std::fs::create_dir(fx.m("to")).unwrap();
    fsync_dir(&fx.m(""));
    write_new(&fx.m("from/x"), b"x").sync_all().unwrap();
    fsync_dir(&fx.m("from"));

    std::fs::rename(fx.m("from/x"), fx.m("to/y")).unwrap();
    fsync_dir(&fx.m("from"));
    fx.lose();
    assert_eq!(names(&fx.m("from")), ["x"], "fsyncing the source is not enough");
    assert!(names(&fx.m("to")).is_empty());

    std::fs::rename(fx.m("from/x"), fx.m("to/y")).unwrap();
    fsync_dir(&fx.m("to"));
    fx.lose();
    assert!(names(&fx.m("from")).is_empty());
    assert_eq!(read(&fx.m("to/y")).unwrap(), b"x");
}

#[test]
fn an_unlink_is_durable_only_after_its_directory_is_fsynced() {
    let Some(fx) = Fixture::plain() else { return };
    write_new(&fx.m("kept"), b"kept").sync_all().unwrap();
    write_new(&fx.m("gone"), b"gone").sync_all().unwrap();
    fsync_dir(&fx.m(""));

    std::fs::remove_file(fx.m("kept")).unwrap();
    assert_eq!(names(&fx.m("")), ["gone"]);
    fx.lose();
    assert_eq!(read(&fx.m("kept")).unwrap(), b"kept", "an unsynced unlink comes back, content too");

    std::fs::remove_file(fx.m("gone")).unwrap();
    fsync_dir(&fx.m(""));
    fx.lose();
    assert_eq!(names(&fx.m("")), ["kept"]);
    assert_eq!(names(&fx.b("")), [".lazyfs-trash", "kept"]);
    assert!(names(&fx.b(".lazyfs-trash")).is_empty(), "durable removals are deleted");
}

#[test]
fn directories_follow_the_same_rules() {
    let Some(fx) = Fixture::plain() else { return };
    // A directory whose creation is undone takes its contents, even ones fsynced in it.
    std::fs::create_dir(fx.m("d")).unwrap();
    write_new(&fx.m("d/f"), b"f").sync_all().unwrap();
    fsync_dir(&fx.m("d"));
    fx.lose();
    assert!(names(&fx.m("")).is_empty());

    // An rmdir without a directory fsync is undone.
    std::fs::create_dir(fx.m("e")).unwrap();
    fsync_dir(&fx.m(""));
    std::fs::remove_dir(fx.m("e")).unwrap();
    fx.lose();
    assert_eq!(names(&fx.m("")), ["e"]);
    std::fs::remove_dir(fx.m("e")).unwrap();
    fsync_dir(&fx.m(""));
    fx.lose();
    assert!(names(&fx.m("")).is_empty());
}

#[test]
fn symlinks_and_hard_links_follow_the_create_rule() {
    let Some(fx) = Fixture::plain() else { return };
    write_new(&fx.m("target"), b"t").sync_all().unwrap();
    fsync_dir(&fx.m(""));
    std::os::unix::fs::symlink("target", fx.m("soft")).unwrap();
    std::fs::hard_link(fx.m("target"), fx.m("hard")).unwrap();
    assert_eq!(read(&fx.m("soft")).unwrap(), b"t");
    assert_eq!(std::fs::metadata(fx.m("target")).unwrap().nlink(), 2);
    fx.lose();
    assert_eq!(names(&fx.m("")), ["target"]);
    assert_eq!(std::fs::metadata(fx.m("target")).unwrap().nlink(), 1);

    std::os::unix::fs::symlink("target", fx.m("soft")).unwrap();
    std::fs::hard_link(fx.m("target"), fx.m("hard")).unwrap();
    fsync_dir(&fx.m(""));
    fx.lose();
    assert_eq!(names(&fx.m("")), ["hard", "soft", "target"]);
    assert_eq!(std::fs::read_link(fx.m("soft")).unwrap().to_str(), Some("target"));
    assert_eq!(read(&fx.m("hard")).unwrap(), b"t");
}

#[test]
fn an_open_unlinked_file_can_still_be_written_and_synced() {
    let Some(fx) = Fixture::plain() else { return };
    let f = write_new(&fx.m("f"), b"before");
    f.sync_all().unwrap();
    fsync_dir(&fx.m(""));
    std::fs::remove_file(fx.m("f")).unwrap();
    f.write_all_at(b"AFTER!", 0).unwrap();
    f.sync_all().unwrap();
    let mut back = [0u8; 6];
    f.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(&back, b"AFTER!");
    // The unlink was not durable: the name comes back with the synced data.
    fx.lose();
    assert_eq!(read(&fx.m("f")).unwrap(), b"AFTER!");
}
