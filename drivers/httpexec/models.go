package httpexec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ParseModels reads an OpenAI-style model list, the reply of GET
// /v1/models ({"object":"list","data":[{"id":"..."}]}), and returns the
// model ids. An empty list is not an error: the server answers but has
// no model loaded yet.
func ParseModels(body []byte) ([]string, error) {
	var r struct {
		Data *[]struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("model list: %w", err)
	}
	if r.Data == nil {
		return nil, errors.New("model list: no data field")
	}
	ids := make([]string, 0, len(*r.Data))
	for _, m := range *r.Data {
		ids = append(ids, m.ID)
	}
	return ids, nil
}
