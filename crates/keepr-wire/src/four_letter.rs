//! Four-letter words: the text commands (`ruok`, `mntr`, `srvr`, ...) that monitoring tools
//! send instead of a ConnectRequest.
//!
//! ZooKeeper reads the first four bytes of a connection that has not completed its
//! handshake as a length; if that number spells a known command it answers in plain text
//! and closes the connection instead. No real frame can be mistaken for one: every command
//! read as a length is far beyond `jute.maxbuffer`. Whether a command is enabled
//! (`4lw.commands.whitelist`) is the server's decision, not this module's.

/// A command ZooKeeper 3.8/3.9 recognises (`FourLetterCommands`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FourLetterWord {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Ruok,
    /// Followed by an 8-byte trace mask.
    Stmk,
    Srst,
    Srvr,
    Stat,
    Wchc,
    Wchp,
    Wchs,
    Mntr,
    Isro,
    Hash,
    /// The bytes telnet sends when it closes (`0xfff4fffd`); ZooKeeper just closes.
    TelnetClose,
}

impl FourLetterWord {
    pub const ALL: [FourLetterWord; 19] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srst,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::Hash,
        FourLetterWord::TelnetClose,
    ];

    /// Recognises the first four bytes of a connection.
    pub fn from_prefix(first: [u8; 4]) -> Option<FourLetterWord> {
        use FourLetterWord::*;
        Some(match &first {
            b"conf" => Conf,
            b"cons" => Cons,
            b"crst" => Crst,
            b"dirs" => Dirs,
            b"dump" => Dump,
            b"envi" => Envi,
            b"gtmk" => Gtmk,
            b"ruok" => Ruok,
            b"stmk" => Stmk,
            b"srst" => Srst,
            b"srvr" => Srvr,
            b"stat" => Stat,
            b"wchc" => Wchc,
            b"wchp" => Wchp,
            b"wchs" => Wchs,
            b"mntr" => Mntr,
            b"isro" => Isro,
            b"hash" => Hash,
            [0xff, 0xf4, 0xff, 0xfd] => TelnetClose,
            _ => return None,
        })
    }

    /// The four bytes on the wire.
    pub fn bytes(self) -> [u8; 4] {
        *self.wire()
    }

    /// The name ZooKeeper's whitelist uses (`4lw.commands.whitelist`); telnet close has
    /// none and is always honoured.
    pub fn name(self) -> Option<&'static str> {
        match self {
            FourLetterWord::TelnetClose => None,
            word => std::str::from_utf8(word.wire()).ok(),
        }
    }

    fn wire(self) -> &'static [u8; 4] {
        use FourLetterWord::*;
        match self {
            Conf => b"conf",
            Cons => b"cons",
            Crst => b"crst",
            Dirs => b"dirs",
            Dump => b"dump",
            Envi => b"envi",
            Gtmk => b"gtmk",
            Ruok => b"ruok",
            Stmk => b"stmk",
            Srst => b"srst",
            Srvr => b"srvr",
            Stat => b"stat",
            Wchc => b"wchc",
            Wchp => b"wchp",
            Wchs => b"wchs",
            Mntr => b"mntr",
            Isro => b"isro",
            Hash => b"hash",
            TelnetClose => &[0xff, 0xf4, 0xff, 0xfd],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DEFAULT_MAX_FRAME;

    #[test]
    fn every_word_is_recognised_from_its_bytes() {
        for word in FourLetterWord::ALL {
            assert_eq!(FourLetterWord::from_prefix(word.bytes()), Some(word));
        }
    }

    #[test]
    fn names_are_the_whitelist_names() {
        assert_eq!(FourLetterWord::Ruok.name(), Some("ruok"));
        assert_eq!(FourLetterWord::Mntr.name(), Some("mntr"));
        assert_eq!(FourLetterWord::TelnetClose.name(), None);
    }

    #[test]
    fn other_prefixes_are_not_words() {
        for prefix in [*b"RUOK", *b"ruo\0", [0, 0, 0, 45], [0, 0, 0, 0], *b"kill"] {
            assert_eq!(FourLetterWord::from_prefix(prefix), None);
        }
    }

    #[test]
    fn no_word_is_a_valid_frame_length() {
        for word in FourLetterWord::ALL {
            let as_len = i32::from_be_bytes(word.bytes());
            assert!(
                as_len < 0 || as_len as usize > DEFAULT_MAX_FRAME,
                "{word:?}"
            );
        }
    }

    #[test]
    fn a_connect_request_prefix_is_not_a_word() {
        // A Java client's ConnectRequest frame starts with length 45.
        assert_eq!(FourLetterWord::from_prefix(45i32.to_be_bytes()), None);
    }
}
