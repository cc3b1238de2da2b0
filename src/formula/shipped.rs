//! The formulas shipped inside the binary, embedded at build time from `formulas/` so the
//! program needs no files at run time.

/// `(name, text)` of every shipped formula, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "code-review",
        include_str!("../../formulas/code-review.formula.toml"),
    ),
    (
        "example",
        include_str!("../../formulas/example.formula.toml"),
    ),
    (
        "polecat-work",
        include_str!("../../formulas/polecat-work.formula.toml"),
    ),
    (
        "release",
        include_str!("../../formulas/release.formula.toml"),
    ),
];
