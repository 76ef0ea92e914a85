//! Checks shared by the file-parsing targets (included with `#[path]`; not a target itself).

use std::path::Path;

use conductor_core::error::FileLocation;

/// A parse error's location names `path`, lies inside `text` (1-based line and column), and the
/// error displays as `location: message`.
pub fn check_location(location: &FileLocation, message: &str, shown: &str, path: &Path, text: &str) {
    assert!(location.line >= 1, "line {} < 1: {shown}", location.line);
    assert!(
        location.column >= 1,
        "column {} < 1: {shown}",
        location.column
    );
    assert_eq!(location.path, path, "error names another path: {shown}");
    let lines = text.split('\n').count();
    assert!(
        location.line <= lines,
        "line {} past the {lines} lines of the text: {shown}",
        location.line
    );
    let line_text = text.split('\n').nth(location.line - 1).unwrap_or_default();
    let columns = line_text.chars().count() + 1;
    assert!(
        location.column <= columns,
        "column {} past the {columns} columns of line {}: {shown}",
        location.column,
        location.line
    );
    assert!(
        shown.starts_with(&format!("{location}: ")) && shown.ends_with(message),
        "Display is not `location: message`: {shown}"
    );
}
