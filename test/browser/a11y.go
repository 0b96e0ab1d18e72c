package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
)

// Control is an interactive element of a page, as the accessibility tree
// shows it to a screen reader.
type Control struct {
	// Role is the ARIA role the browser computed, such as "button" or
	// "textbox"; an <input type=search> is a "searchbox".
	Role string

	// HTML is the start of the element's outerHTML, to tell the control in
	// a failure message; empty when the node has no DOM element.
	HTML string
}

// String returns the role and the HTML, for failure messages.
func (c Control) String() string {
	return fmt.Sprintf("%s %s", c.Role, c.HTML)
}

// interactiveRoles are the roles a person operates; such a control with no
// accessible name is announced as just "button" or "edit text".
var interactiveRoles = map[string]bool{
	"button":           true,
	"checkbox":         true,
	"combobox":         true,
	"link":             true,
	"listbox":          true,
	"menuitem":         true,
	"menuitemcheckbox": true,
	"menuitemradio":    true,
	"radio":            true,
	"searchbox":        true,
	"slider":           true,
	"spinbutton":       true,
	"switch":           true,
	"tab":              true,
	"textbox":          true,
	"treeitem":         true,
}

// htmlPrefix is how much of a control's outerHTML a Control keeps: enough for
// the tag and its attributes, not a whole form.
const htmlPrefix = 120

// UnlabeledControls returns, in the accessibility tree's order, the
// interactive controls of the main frame of ctx's tab whose accessible name
// is empty: no <label>, aria-label, aria-labelledby, title, text content or
// placeholder names them. Controls that the accessibility tree ignores
// (hidden, inert) are not reported. Controls inside iframes are not looked
// at.
func UnlabeledControls(ctx context.Context) ([]Control, error) {
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		return nil, fmt.Errorf("reading the accessibility tree: %w", err)
	}
	var unlabeled []Control
	for _, n := range tree.Nodes {
		if n.Ignored {
			continue
		}
		role, err := axString(n.Role)
		if err != nil {
			return nil, fmt.Errorf("reading the role of accessibility node %s: %w", n.NodeID, err)
		}
		if !interactiveRoles[role] {
			continue
		}
		name, err := axString(n.Name)
		if err != nil {
			return nil, fmt.Errorf("reading the name of accessibility node %s: %w", n.NodeID, err)
		}
		if strings.TrimSpace(name) != "" {
			continue
		}
		c := Control{Role: role}
		if n.BackendDOMNodeID != 0 {
			html, err := chromedp.Call(ctx, dom.GetOuterHTML, dom.GetOuterHTMLParams{BackendNodeID: n.BackendDOMNodeID})
			if err != nil {
				return nil, fmt.Errorf("reading the HTML of an unlabeled %s: %w", role, err)
			}
			c.HTML = truncate(html.OuterHTML, htmlPrefix)
		}
		unlabeled = append(unlabeled, c)
	}
	return unlabeled, nil
}

// axString returns the string in an accessibility value; roles and names are
// JSON strings, and a missing value is an empty one.
func axString(v *accessibility.Value) (string, error) {
	if v == nil || len(v.Value) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return "", fmt.Errorf("decoding %s: %w", v.Value, err)
	}
	return s, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence,
// marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
