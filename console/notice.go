package console

import (
	"fmt"
	"net/url"
	"strconv"
)

// Notices are the one-line confirmations a page shows after an action
// redirected to it. The redirect names one by a code, with whole numbers
// as its only arguments: the text always comes from this table, never from
// the URL, so a crafted link cannot make the console say something it did
// not (a fake "call support at …" banner under the console's name).
var notices = map[string]struct {
	text string
	args []string // the query parameters filling the text's %d verbs, in order
}{
	"normalised": {text: "Found by its normalised form: identifiers are normalised as lookup does."},
	"split":      {text: "Split: %d identifiers moved here, to a new profile.", args: []string{"n"}},
	"linked":     {text: "Linked: the profiles are merged (the history has the audit entry)."},
	"undone":     {text: "Undone: the history has the audit entry."},
	"approved":   {text: "Approved: the two profiles are merged."},
	"rejected":   {text: "Rejected: the two profiles stay apart."},
	"conflict":   {text: "Not done: the item was decided meanwhile, or is no longer pending."},
	"approved-many": {text: "Approved %d of %d. Not done: %d already decided or no longer pending, %d refused.",
		args: []string{"n", "of", "conflict", "other"}},
	"rejected-many": {text: "Rejected %d of %d. Not done: %d already decided or no longer pending, %d refused.",
		args: []string{"n", "of", "conflict", "other"}},
	"saved":    {text: "Saved version %d: backfilling.", args: []string{"n"}},
	"disabled": {text: "Disabled: version %d is no longer evaluated, and its values are dropped.", args: []string{"n"}},
	"enabled":  {text: "Enabled: version %d, backfilling.", args: []string{"n"}},
}

// noticeURL returns path with the notice's code and arguments in its query.
func noticeURL(path, code string, args ...int) string {
	n, ok := notices[code]
	if !ok || len(args) != len(n.args) {
		panic("console: notice " + code + " is not in the table or has the wrong arguments")
	}
	q := url.Values{"notice": {code}}
	for i, a := range n.args {
		q.Set(a, strconv.Itoa(args[i]))
	}
	return path + "?" + q.Encode()
}

// noticeText is the text of the query's notice: empty for no notice, an
// unknown code, or an argument that is not a small whole number.
func noticeText(q url.Values) string {
	n, ok := notices[q.Get("notice")]
	if !ok {
		return ""
	}
	vals := make([]any, len(n.args))
	for i, a := range n.args {
		v, err := strconv.Atoi(q.Get(a))
		if err != nil || v < 0 || v > 1_000_000 {
			return ""
		}
		vals[i] = v
	}
	return fmt.Sprintf(n.text, vals...)
}
