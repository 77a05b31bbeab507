package convert

// NotMailFolder is the reason given for a file below the folders directory
// that is not a mail folder (c-client would not open it as a mailbox): it
// is left behind, never copied or renamed.
const NotMailFolder = "left behind: not a mail folder"
