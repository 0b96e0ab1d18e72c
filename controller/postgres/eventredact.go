package postgres

import (
	"encoding/json"

	"github.com/openflynn/flynn/controller"
)

// The event log outlives the state it describes: a release replaced by
// `flynn env unset` stays in the log until the log is pruned. So no secret
// goes into it. A release's, a resource's or the cluster's build settings'
// env keeps its names, each with controller.RedactedValue for its value
// (the build settings' CA certificates are public and stay), a route's
// certificate loses its private key, a provider's URL the key in its
// userinfo (controller.RedactURL), and a log drain's URL the token its
// userinfo, path or query may hold (controller.RedactLogDrainURL).
// Redaction works on the encoded object, keyed by object type, so that
// whatever Go type a repository emits for one of them is redacted alike;
// migration 0006 does the same to the release, resource and route events
// written before (log drains and build settings came later).

// redact returns the data of an event of objectType without its secrets.
func redact(objectType string, data []byte) ([]byte, error) {
	var hide func(obj map[string]json.RawMessage) error
	switch objectType {
	case controller.ObjectTypeRelease:
		hide = func(obj map[string]json.RawMessage) error {
			if err := hideEnv(obj, "env"); err != nil {
				return err
			}
			return eachObject(obj, "processes", func(pt map[string]json.RawMessage) error { return hideEnv(pt, "env") })
		}
	case controller.ObjectTypeResource, controller.ObjectTypeBuildEnv:
		hide = func(obj map[string]json.RawMessage) error { return hideEnv(obj, "env") }
	case controller.ObjectTypeRoute:
		hide = func(obj map[string]json.RawMessage) error {
			return edit(obj, "certificate", func(cert map[string]json.RawMessage) error {
				delete(cert, "key")
				return nil
			})
		}
	case controller.ObjectTypeProvider:
		hide = func(obj map[string]json.RawMessage) error { return hideURL(obj, controller.RedactURL) }
	case controller.ObjectTypeLogDrain:
		hide = func(obj map[string]json.RawMessage) error { return hideURL(obj, controller.RedactLogDrainURL) }
	default:
		return data, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return data, err // null: a delete that carries nothing
	}
	if err := hide(obj); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// hideURL replaces obj["url"], if any, with what redactURL makes of it.
func hideURL(obj map[string]json.RawMessage, redactURL func(string) string) error {
	raw, ok := obj["url"]
	if !ok {
		return nil
	}
	var u string
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	b, err := json.Marshal(redactURL(u))
	obj["url"] = b
	return err
}

// hideEnv replaces every value of the env object obj[field], if any, with
// controller.RedactedValue.
func hideEnv(obj map[string]json.RawMessage, field string) error {
	raw, ok := obj[field]
	if !ok {
		return nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil || env == nil {
		return err
	}
	hidden := make(map[string]string, len(env))
	for k := range env {
		hidden[k] = controller.RedactedValue
	}
	b, err := json.Marshal(hidden)
	obj[field] = b
	return err
}

// edit applies fn to the object obj[field], if any.
func edit(obj map[string]json.RawMessage, field string, fn func(map[string]json.RawMessage) error) error {
	raw, ok := obj[field]
	if !ok {
		return nil
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(raw, &inner); err != nil || inner == nil {
		return err
	}
	if err := fn(inner); err != nil {
		return err
	}
	b, err := json.Marshal(inner)
	obj[field] = b
	return err
}

// eachObject applies fn to every object in the object obj[field] (a map
// of objects, as a release's processes).
func eachObject(obj map[string]json.RawMessage, field string, fn func(map[string]json.RawMessage) error) error {
	return edit(obj, field, func(m map[string]json.RawMessage) error {
		for k := range m {
			if err := edit(m, k, fn); err != nil {
				return err
			}
		}
		return nil
	})
}
