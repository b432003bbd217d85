//! Button grids of send message v2 and the chatbot (docs/divar-protocol.md §2.4), and the
//! legacy button of the 2023 send-message API (§2.3).
//!
//! A grid may be read from a user's JSON file, so [`Action`] holds every action key as an
//! option: a parsed button can carry zero or two actions, and [`ButtonGrid::validate`]
//! rejects it before anything is sent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ValidationError;

/// Most rows of a grid.
pub const MAX_ROWS: usize = 3;
/// Most buttons of a row.
pub const MAX_BUTTONS_PER_ROW: usize = 3;

/// `{"rows": [...]}`: up to 3 rows of up to 3 buttons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ButtonGrid {
    /// The rows, top to bottom.
    #[serde(default)]
    pub rows: Vec<ButtonRow>,
}

/// `{"buttons": [...]}`: one row, left to right.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ButtonRow {
    /// The buttons of the row.
    #[serde(default)]
    pub buttons: Vec<ChatButton>,
}

/// One button: what it does, its label and its icon.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatButton {
    /// What a tap does; exactly one key must be set.
    #[serde(default)]
    pub action: Action,
    /// The label; must not be empty.
    #[serde(default)]
    pub caption: String,
    /// An icon name of Divar's enum, for example `INFO` or `REAL_ESTATE`. The deprecated
    /// `icon_name` is read into it and sent as `icon` (docs/divar-protocol.md §3.19).
    #[serde(alias = "icon_name")]
    pub icon: Option<String>,
}

impl ChatButton {
    /// A button with a caption and an action, without an icon.
    pub fn new(caption: impl Into<String>, action: Action) -> Self {
        Self {
            action,
            caption: caption.into(),
            icon: None,
        }
    }

    /// The same button with an icon.
    pub fn with_icon(mut self, icon: impl Into<String>) -> Self {
        self.icon = Some(icon.into());
        self
    }
}

/// `addonsAction`: exactly one key must be set; see [`Action::count`].
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Opens this URL directly.
    pub open_direct_link: Option<String>,
    /// Divar POSTs the session-init request with `data`, then opens the returned URL.
    pub open_server_link: Option<ActionData>,
    /// Divar POSTs `data` to the dynamic-action URL; the app answers with an action or toast.
    pub get_dynamic_action: Option<ActionData>,
    /// Opens a Divar post.
    pub open_post_page: Option<PostTarget>,
    /// Opens the management page of a post (owner only).
    pub open_post_manage_page: Option<PostTarget>,
}

/// `{"data": {...}}`: app data echoed back by Divar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionData {
    /// Free-form object; values are usually strings.
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// `{"post_token": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostTarget {
    /// Token of the post.
    pub post_token: String,
}

impl Action {
    /// `open_direct_link`.
    pub fn open_direct_link(url: impl Into<String>) -> Self {
        Self {
            open_direct_link: Some(url.into()),
            ..Self::default()
        }
    }

    /// `open_server_link` with `data`.
    pub fn open_server_link(data: Map<String, Value>) -> Self {
        Self {
            open_server_link: Some(ActionData { data }),
            ..Self::default()
        }
    }

    /// `get_dynamic_action` with `data`.
    pub fn get_dynamic_action(data: Map<String, Value>) -> Self {
        Self {
            get_dynamic_action: Some(ActionData { data }),
            ..Self::default()
        }
    }

    /// `open_post_page` of a post.
    pub fn open_post_page(post_token: impl Into<String>) -> Self {
        Self {
            open_post_page: Some(PostTarget {
                post_token: post_token.into(),
            }),
            ..Self::default()
        }
    }

    /// `open_post_manage_page` of a post.
    pub fn open_post_manage_page(post_token: impl Into<String>) -> Self {
        Self {
            open_post_manage_page: Some(PostTarget {
                post_token: post_token.into(),
            }),
            ..Self::default()
        }
    }

    /// How many action keys are set; a valid action has exactly one.
    pub fn count(&self) -> usize {
        [
            self.open_direct_link.is_some(),
            self.open_server_link.is_some(),
            self.get_dynamic_action.is_some(),
            self.open_post_page.is_some(),
            self.open_post_manage_page.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }
}

impl ButtonGrid {
    /// A grid of the given rows.
    pub fn new(rows: impl IntoIterator<Item = Vec<ChatButton>>) -> Self {
        Self {
            rows: rows
                .into_iter()
                .map(|buttons| ButtonRow { buttons })
                .collect(),
        }
    }

    /// Checks Divar's limits: at most 3 rows, at most 3 buttons a row, exactly one action and
    /// a non-empty caption per button. `field` names the grid in the error. Rows and buttons
    /// are counted from 1.
    pub fn validate(&self, field: &'static str) -> Result<(), ValidationError> {
        if self.rows.len() > MAX_ROWS {
            return Err(ValidationError::TooManyRows {
                field,
                rows: self.rows.len(),
            });
        }
        for (r, row) in self.rows.iter().enumerate() {
            let row_no = r + 1;
            if row.buttons.len() > MAX_BUTTONS_PER_ROW {
                return Err(ValidationError::TooManyButtons {
                    field,
                    row: row_no,
                    buttons: row.buttons.len(),
                });
            }
            for (b, button) in row.buttons.iter().enumerate() {
                let (row, button_no) = (row_no, b + 1);
                let actions = button.action.count();
                if actions != 1 {
                    return Err(ValidationError::ActionCount {
                        field,
                        row,
                        button: button_no,
                        actions,
                    });
                }
                if button.caption.trim().is_empty() {
                    return Err(ValidationError::EmptyCaption {
                        field,
                        row,
                        button: button_no,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A legacy button (2023 API): `{"action": "LINK" | "DIRECT_LINK", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "data")]
pub enum LegacyButton {
    /// `LINK`: a tap sends the click callback with `extra_data`, then opens the URL the app
    /// answers.
    #[serde(rename = "LINK")]
    Link(LegacyLinkData),
    /// `DIRECT_LINK`: a tap opens `direct_link`; the app is not called.
    #[serde(rename = "DIRECT_LINK")]
    DirectLink(LegacyDirectLinkData),
}

/// `data` of a legacy `LINK` button.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyLinkData {
    /// Icon enum name, for example `CAR_INSPECTED`.
    pub icon_name: Option<String>,
    /// The label; must not be empty.
    pub caption: String,
    /// App data, echoed back in the click callback as `extra_data.provider_data`.
    #[serde(default)]
    pub extra_data: Map<String, Value>,
}

/// `data` of a legacy `DIRECT_LINK` button.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyDirectLinkData {
    /// Icon enum name, for example `FILE`.
    pub icon_name: Option<String>,
    /// The label; must not be empty.
    pub caption: String,
    /// The URL opened on a tap.
    pub direct_link: String,
}

impl LegacyButton {
    /// The label of the button.
    pub fn caption(&self) -> &str {
        match self {
            Self::Link(d) => &d.caption,
            Self::DirectLink(d) => &d.caption,
        }
    }

    /// Checks that the caption is not empty; `field` names the button in the error.
    pub fn validate(&self, field: &'static str) -> Result<(), ValidationError> {
        if self.caption().trim().is_empty() {
            return Err(ValidationError::EmptyCaption {
                field,
                row: 1,
                button: 1,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_user_grid_reads_icon_name_as_icon_and_counts_its_actions() {
        let grid: ButtonGrid = serde_json::from_value(json!({"rows": [{"buttons": [
            {"caption": "a", "icon_name": "FILE", "action": {"open_direct_link": "https://x.example"}},
            {"caption": "b", "action": {}, "unknown": true}
        ]}]}))
        .unwrap();
        let buttons = &grid.rows[0].buttons;
        assert_eq!(buttons[0].icon.as_deref(), Some("FILE"));
        assert_eq!(
            (buttons[0].action.count(), buttons[1].action.count()),
            (1, 0)
        );
        assert_eq!(
            serde_json::to_value(&buttons[0]).unwrap(),
            json!({"caption": "a", "icon": "FILE", "action": {"open_direct_link": "https://x.example"}})
        );
    }

    #[test]
    fn validation_names_the_row_and_button_from_one() {
        let ok = ChatButton::new("ok", Action::open_post_manage_page("AZx7Kp2Q"));
        let bad = ChatButton::new("", Action::open_post_page("AZx7Kp2Q"));
        let grid = ButtonGrid::new([vec![ok.clone()], vec![ok, bad]]);
        assert_eq!(
            grid.validate("buttons"),
            Err(ValidationError::EmptyCaption {
                field: "buttons",
                row: 2,
                button: 2
            })
        );
        assert_eq!(ButtonGrid::default().validate("buttons"), Ok(()));
    }

    #[test]
    fn a_legacy_button_is_tagged_by_its_action() {
        let button = LegacyButton::DirectLink(LegacyDirectLinkData {
            icon_name: None,
            caption: "c".into(),
            direct_link: "https://x.example".into(),
        });
        assert_eq!(
            serde_json::to_value(&button).unwrap(),
            json!({"action": "DIRECT_LINK", "data": {"caption": "c", "direct_link": "https://x.example"}})
        );
    }
}
