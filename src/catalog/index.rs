//! The catalog's topics, found by name (in name order) or by id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::Topic;

#[derive(Debug, Default)]
pub(super) struct Topics {
    by_name: BTreeMap<String, Arc<Topic>>,
    /// A fetch or metadata request by topic id finds its topic without a walk.
    by_id: HashMap<Uuid, Arc<Topic>>,
}

impl Topics {
    pub(super) fn insert(&mut self, topic: Arc<Topic>) {
        if let Some(old) = self.by_name.insert(topic.name.clone(), topic.clone()) {
            self.by_id.remove(&old.id);
        }
        self.by_id.insert(topic.id, topic);
    }

    pub(super) fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }

    pub(super) fn get(&self, name: &str) -> Option<&Arc<Topic>> {
        self.by_name.get(name)
    }

    pub(super) fn by_id(&self, id: Uuid) -> Option<&Arc<Topic>> {
        self.by_id.get(&id)
    }

    /// Every topic, in name order.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Topic>> {
        self.by_name.values()
    }

    pub(super) fn into_values(self) -> impl Iterator<Item = Arc<Topic>> {
        self.by_name.into_values()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;

    use super::*;
    use crate::catalog::topic::TopicState;

    fn topic(name: &str) -> Arc<Topic> {
        Arc::new(Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            state: RwLock::new(TopicState {
                partitions: Vec::new(),
                overrides: BTreeMap::new(),
            }),
        })
    }

    #[test]
    fn a_topic_is_found_by_name_and_by_id_until_removed() {
        let mut topics = Topics::default();
        let (a, b) = (topic("a"), topic("b"));
        topics.insert(b.clone());
        topics.insert(a.clone());
        assert_eq!(topics.by_id(a.id).map(|t| t.name.as_str()), Some("a"));
        assert_eq!(topics.get("b").map(|t| t.id), Some(b.id));
        let names: Vec<_> = topics.values().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(topics.remove("a").is_some());
        assert!(topics.by_id(a.id).is_none() && topics.get("a").is_none());
        // A topic created again under the same name has a new id; the old one is gone.
        let again = topic("b");
        topics.insert(again.clone());
        assert!(topics.by_id(b.id).is_none());
        assert_eq!(topics.by_id(again.id).map(|t| t.id), Some(again.id));
    }
}
