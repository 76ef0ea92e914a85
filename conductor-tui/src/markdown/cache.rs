//! The per-entry cache of wrapped lines.

use super::*;

/// Cached wrapped lines of one conversation entry, valid for one width, one version of the
/// entry's content and one theme. Only the entry that changes (the streaming answer) is wrapped again; every
/// other entry is wrapped once per terminal width.
#[derive(Debug, Default)]
pub struct RenderCache {
    inner: RefCell<Option<Cached>>,
}

#[derive(Debug)]
pub(super) struct Cached {
    width: u16,
    version: u64,
    theme: ThemeKind,
    lines: Vec<Line<'static>>,
    /// Of an answer that streams: what lets the next version render only its tail.
    tail: Option<StreamTail>,
}

impl RenderCache {
    /// The number of lines at `width` for `version`, rendering with `render` if not cached.
    pub fn height(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce() -> Vec<Line<'static>>,
    ) -> usize {
        self.with_lines(width, version, render, <[Line<'static>]>::len)
    }

    /// Runs `f` on the lines at `width` for `version`, rendering with `render` if not cached.
    pub fn with_lines<R>(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce() -> Vec<Line<'static>>,
        f: impl FnOnce(&[Line<'static>]) -> R,
    ) -> R {
        let mut cache = self.inner.borrow_mut();
        let theme = theme::active_kind();
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.width == width && c.version == version && c.theme == theme);
        if !fresh {
            *cache = Some(Cached {
                width,
                version,
                theme,
                lines: render(),
                tail: None,
            });
        }
        match cache.as_ref() {
            Some(cached) => f(&cached.lines),
            None => f(&[]),
        }
    }

    /// [`RenderCache::height`] with [`RenderCache::with_lines_in_place`]'s `render`.
    pub fn height_in_place(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce(&mut Vec<Line<'static>>, &mut Option<StreamTail>),
    ) -> usize {
        self.with_lines_in_place(width, version, render, <[Line<'static>]>::len)
    }

    /// As [`RenderCache::with_lines`], but `render` updates the lines in place: when they are
    /// of an earlier version at the same width and theme, it gets them with what it kept
    /// beside them (see [`crate::ui::entry_lines_into`]); otherwise it gets none.
    pub fn with_lines_in_place<R>(
        &self,
        width: u16,
        version: u64,
        render: impl FnOnce(&mut Vec<Line<'static>>, &mut Option<StreamTail>),
        f: impl FnOnce(&[Line<'static>]) -> R,
    ) -> R {
        let mut cache = self.inner.borrow_mut();
        let theme = theme::active_kind();
        // Checked in place: this runs for every entry at every frame.
        let reusable = cache
            .as_ref()
            .is_some_and(|c| c.width == width && c.theme == theme);
        if !reusable {
            *cache = Some(Cached {
                width,
                version: version.wrapping_add(1),
                theme,
                lines: Vec::new(),
                tail: None,
            });
        }
        let Some(cached) = cache.as_mut() else {
            return f(&[]);
        };
        if cached.version != version {
            render(&mut cached.lines, &mut cached.tail);
            cached.version = version;
        }
        f(&cached.lines)
    }

    /// Forgets the cached lines.
    pub fn clear(&self) {
        self.inner.borrow_mut().take();
    }
}

impl Clone for RenderCache {
    /// A clone starts empty: cached lines are cheap to rebuild and not worth copying.
    fn clone(&self) -> Self {
        Self::default()
    }
}
