//! Who owns what crosses the C ABI, stated once per type (after rustls-ffi's
//! `Castable`): each opaque C type names the Rust type behind its pointers
//! and how C holds it.
//!
//! - [`OwnershipBox`]: C owns it. It was made with [`to_boxed_mut_ptr`],
//!   is borrowed with [`try_ref_from_ptr`] / [`try_mut_from_ptr`], and is
//!   given back exactly once with [`try_box_from_ptr`] (a consuming call or
//!   the type's `_free`).
//! - Lent: a pointer into something C owns (an element of a value, an
//!   event's data) is made with [`to_const_ptr`], read with
//!   [`try_ref_from_ptr`] and never freed through. (A type C could only ever
//!   borrow would get an `OwnershipRef`, as in rustls-ffi; none exists yet.)
//!
//! C strings are the one other owned thing: made by `CString::into_raw`,
//! freed by `unisock_string_free` (values.rs).
//!
//! Every cast between a C pointer and its Rust type goes through these
//! functions, so the `unsafe` blocks that turn pointers into references or
//! boxes are here and nowhere else in the value and event surfaces.

/// C owns the pointer: made by [`to_boxed_mut_ptr`], freed once.
pub(crate) struct OwnershipBox;

/// An opaque C type and the Rust type its pointers really point to.
pub(crate) trait Castable {
    /// How C holds it: [`OwnershipBox`] for every type so far.
    type Ownership;
    /// What a pointer to `Self` points to.
    type RustType;
}

/// Types C may get as owned boxes (they can also be lent by reference).
pub(crate) trait Boxed: Castable<Ownership = OwnershipBox> {}
impl<C: Castable<Ownership = OwnershipBox>> Boxed for C {}

/// Gives `value` to C as an owned pointer; C hands it back through
/// [`try_box_from_ptr`] exactly once.
pub(crate) fn to_boxed_mut_ptr<C: Boxed>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)) as *mut C
}

/// Lends `value` to C; the pointer is valid while `value` is.
pub(crate) fn to_const_ptr<C: Castable>(value: &C::RustType) -> *const C {
    value as *const C::RustType as *const C
}

/// A shared reference from a C pointer; None for NULL.
pub(crate) fn try_ref_from_ptr<'a, C: Castable>(p: *const C) -> Option<&'a C::RustType> {
    // SAFETY: the C caller passes NULL or a pointer this library made for `C`
    // (by `to_boxed_mut_ptr` or `to_const_ptr`) that is still live (the
    // documented contract of every entry point); `as_ref` checks NULL.
    unsafe { (p as *const C::RustType).as_ref() }
}

/// An exclusive reference from a C pointer C owns; None for NULL.
pub(crate) fn try_mut_from_ptr<'a, C: Boxed>(p: *mut C) -> Option<&'a mut C::RustType> {
    // SAFETY: as `try_ref_from_ptr`, for a box C owns; C promises no other
    // reference to it is live during the call (documented per function).
    unsafe { (p as *mut C::RustType).as_mut() }
}

/// Takes back a box C owned (a consuming call or `_free`); None for NULL.
pub(crate) fn try_box_from_ptr<C: Boxed>(p: *mut C) -> Option<Box<C::RustType>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null and made by `to_boxed_mut_ptr::<C>`; C hands its
    // ownership back with this call and does not use the pointer again
    // (documented: consuming calls and `_free` take it exactly once).
    Some(unsafe { Box::from_raw(p as *mut C::RustType) })
}

/// Frees a box C owned; NULL is ignored.
pub(crate) fn free_box<C: Boxed>(p: *mut C) {
    drop(try_box_from_ptr(p));
}
