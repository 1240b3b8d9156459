use std::collections::HashMap;

/// A key-value store.
#[derive(Debug, Default)]
pub struct Store {
    items: HashMap<String, String>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.items.get(key)
    }
}

pub fn total(stores: &[Store]) -> usize {
    stores.iter().map(|s| s.items.len()).sum()
}
