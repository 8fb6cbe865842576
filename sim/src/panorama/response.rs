//! PAN-OS response envelopes. Shapes follow /work/shared/reference/panos-xml-api-facts.md §2, §7.

use super::xml_tree::escape;

/// An API failure: PAN-OS code (None = no `code` attribute) and message lines.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: Option<u16>,
    pub lines: Vec<String>,
    /// Validation errors come as CDATA lines on real devices.
    pub cdata: bool,
}

impl ApiError {
    pub fn new(code: u16, msg: impl Into<String>) -> ApiError {
        ApiError { code: Some(code), lines: vec![msg.into()], cdata: false }
    }
    pub fn nocode(msg: impl Into<String>) -> ApiError {
        ApiError { code: None, lines: vec![msg.into()], cdata: false }
    }
    pub fn validation(lines: Vec<String>) -> ApiError {
        ApiError { code: Some(12), lines, cdata: true }
    }
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
    /// `<msg><line>..</line>..</msg>`
    pub fn msg_xml(&self) -> String {
        let mut s = String::from("<msg>");
        for l in &self.lines {
            if self.cdata {
                s.push_str(&format!("<line><![CDATA[ {} ]]></line>", l.replace("]]>", "]]]]><![CDATA[>")));
            } else {
                s.push_str(&format!("<line>{}</line>", escape(l)));
            }
        }
        s.push_str("</msg>");
        s
    }
    pub fn to_xml(&self) -> String {
        match self.code {
            Some(c) => format!("<response status=\"error\" code=\"{c}\">{}</response>", self.msg_xml()),
            None => format!("<response status=\"error\">{}</response>", self.msg_xml()),
        }
    }
}

/// What the HTTP layer sends back.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// HTTP reason phrase override (PAN-OS says `Invalid Credential` on 403).
    pub reason: Option<&'static str>,
    pub body: String,
}

impl Reply {
    pub fn ok(body: String) -> Reply {
        Reply { status: 200, reason: None, body }
    }
    pub fn err(e: &ApiError) -> Reply {
        Reply::ok(e.to_xml())
    }
    /// 403 with the exact 97-byte body PAN-OS sends (note the spaces and single quotes).
    pub fn forbidden() -> Reply {
        Reply {
            status: 403,
            reason: Some("Invalid Credential"),
            body: "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>".into(),
        }
    }
    /// 400 for missing/illegal parameters.
    pub fn bad_request(msg: &str) -> Reply {
        Reply {
            status: 400,
            reason: None,
            body: format!("<response status = 'error' code = '400'><result><msg>{}</msg></result></response>", escape(msg)),
        }
    }
}

pub fn success_msg(code: u16, msg: &str) -> String {
    format!("<response status=\"success\" code=\"{code}\"><msg>{}</msg></response>", escape(msg))
}

pub fn success_result(inner: &str) -> String {
    format!("<response status=\"success\"><result>{inner}</result></response>")
}
