//! RAII guards: an object out of the pool, returned (reset) on drop.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::shared::{Shared, Slot};

/// An object borrowed from a [`Pool`](crate::Pool); reset and returned when
/// dropped. Keep it with [`Pooled::detach`].
///
/// It returns the object through the cache of the thread that pulled it, so
/// it stays on that thread (it is not `Send`); use
/// [`Pool::pull_owned`](crate::Pool::pull_owned) for a guard that travels.
pub struct Pooled<'a, T: Send + 'static> {
    pub(crate) shared: &'a Arc<Shared<T>>,
    pub(crate) slot: Option<&'a Slot<T>>,
    // `Some` from creation until drop or detach.
    pub(crate) item: Option<Box<T>>,
}

/// An object out of a [`Pool`](crate::Pool) that owns a handle to the pool,
/// so it can outlive the borrow, move to another thread and be returned
/// there. Made by [`Pool::pull_owned`](crate::Pool::pull_owned).
pub struct PooledOwned<T: Send + 'static> {
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) item: Option<Box<T>>,
}

macro_rules! guard_impls {
    ($guard:ident $(, $lt:lifetime)?) => {
        impl<$($lt,)? T: Send + 'static> $guard<$($lt,)? T> {
            /// Takes the object out of the pool for good: it will not be
            /// reset or returned.
            pub fn detach(mut self) -> T {
                self.shared.note_detached();
                match self.item.take() {
                    Some(item) => *item,
                    None => unreachable!("a guard holds its object until drop or detach"),
                }
            }

            /// Same as [`detach`](Self::detach).
            pub fn into_inner(self) -> T {
                self.detach()
            }
        }

        impl<$($lt,)? T: Send + 'static> Deref for $guard<$($lt,)? T> {
            type Target = T;

            #[inline]
            fn deref(&self) -> &T {
                match &self.item {
                    Some(item) => item,
                    None => unreachable!("a guard holds its object until drop or detach"),
                }
            }
        }

        impl<$($lt,)? T: Send + 'static> DerefMut for $guard<$($lt,)? T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut T {
                match &mut self.item {
                    Some(item) => item,
                    None => unreachable!("a guard holds its object until drop or detach"),
                }
            }
        }

        impl<$($lt,)? T: Send + fmt::Debug + 'static> fmt::Debug for $guard<$($lt,)? T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($guard)).field(&self.item).finish()
            }
        }
    };
}

guard_impls!(Pooled, 'a);
guard_impls!(PooledOwned);

impl<T: Send + 'static> Drop for Pooled<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.shared.give_with(self.slot, item);
        }
    }
}

impl<T: Send + 'static> Drop for PooledOwned<T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.shared.give(item);
        }
    }
}
