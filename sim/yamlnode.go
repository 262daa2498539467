package sim

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// ynode is a YAML node reduced to what scenario files use: mappings,
// sequences and plain scalars, each with the line and column it starts at.
// Anchors, aliases, tags and merge keys are refused where they appear, so
// a file means what it says and cannot expand into a billion entries.
type ynode struct {
	kind      ykind
	tag       string // for scalars: "str", "int", "float", "bool", "null"
	value     string // for scalars: the text (a string's value, unquoted)
	line, col int
	keys      []*ynode // mapping keys, in file order
	vals      []*ynode // mapping values, in file order
	items     []*ynode // sequence items
}

type ykind int

const (
	yScalar ykind = iota
	yMap
	ySeq
)

func (n *ynode) describe() string {
	switch n.kind {
	case yMap:
		return "a mapping"
	case ySeq:
		return "a list"
	}
	switch n.tag {
	case "null":
		return "nothing (null)"
	case "str":
		return fmt.Sprintf("the text %q", n.value)
	}
	return fmt.Sprintf("the %s %s", n.tag, n.value)
}

// yamlError is a syntax or structure error at a place in the file.
type yamlError struct {
	line, col int
	msg       string
}

// parseYAML parses one YAML document into a ynode tree.
func parseYAML(data []byte) (*ynode, *yamlError) {
	if err := checkFlowDepth(data); err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		if e, ok := err.(interface {
			GetMessage() string
			GetToken() *token.Token
		}); ok && e.GetToken() != nil {
			p := e.GetToken().Position
			return nil, &yamlError{p.Line, p.Column, "not valid YAML: " + e.GetMessage()}
		}
		return nil, &yamlError{1, 1, "not valid YAML: " + firstLine(err.Error())}
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, &yamlError{1, 1, "empty file: want a scenario (a mapping with hosts, connections, actions and expect)"}
	}
	if len(f.Docs) > 1 {
		d := f.Docs[1]
		line, col := 1, 1
		if d.Start != nil {
			line, col = d.Start.Position.Line, d.Start.Position.Column
		} else if d.Body != nil {
			p := d.Body.GetToken().Position
			line, col = p.Line, p.Column
		}
		return nil, &yamlError{line, col, "a second YAML document: a scenario file holds one"}
	}
	return convert(f.Docs[0].Body, 0)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// checkFlowDepth refuses flow collections ([...] and {...}) nested deeper
// than maxDepth before the parser sees them: the YAML library's parser
// takes time and memory quadratic in that depth (a 200 KB file of
// brackets ran past 8 GB), while its lexer is linear and knows what is
// quoted, commented or a block scalar, so counting its tokens is exact.
// Block nesting is bounded by the file's size and costs the parser little.
func checkFlowDepth(data []byte) *yamlError {
	depth := 0
	for _, tk := range lexer.Tokenize(string(data)) {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			if depth++; depth > maxDepth {
				return &yamlError{tk.Position.Line, tk.Position.Column, fmt.Sprintf("nested more than %d levels deep", maxDepth)}
			}
		case token.SequenceEndType, token.MappingEndType:
			depth--
		}
	}
	return nil
}

// maxDepth bounds nesting; scenarios nest four or five levels.
const maxDepth = 32

func convert(n ast.Node, depth int) (*ynode, *yamlError) {
	tok := n.GetToken()
	line, col := 1, 1
	if tok != nil && tok.Position != nil {
		line, col = tok.Position.Line, tok.Position.Column
	}
	if depth > maxDepth {
		return nil, &yamlError{line, col, fmt.Sprintf("nested more than %d levels deep", maxDepth)}
	}
	scalar := func(tag, value string) (*ynode, *yamlError) {
		return &ynode{kind: yScalar, tag: tag, value: value, line: line, col: col}, nil
	}
	switch n := n.(type) {
	case *ast.MappingNode:
		m := &ynode{kind: yMap, line: line, col: col}
		if len(n.Values) > 0 {
			p := n.Values[0].Key.GetToken().Position
			m.line, m.col = p.Line, p.Column
		}
		for _, mv := range n.Values {
			if err := addPair(m, mv, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *ast.MappingValueNode:
		p := n.Key.GetToken().Position
		m := &ynode{kind: yMap, line: p.Line, col: p.Column}
		if err := addPair(m, n, depth); err != nil {
			return nil, err
		}
		return m, nil
	case *ast.SequenceNode:
		s := &ynode{kind: ySeq, line: line, col: col}
		for _, v := range n.Values {
			item, err := convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			s.items = append(s.items, item)
		}
		return s, nil
	case *ast.StringNode:
		return scalar("str", n.Value)
	case *ast.LiteralNode:
		return scalar("str", n.Value.Value)
	case *ast.IntegerNode:
		return scalar("int", tok.Value)
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return scalar("float", tok.Value)
	case *ast.BoolNode:
		return scalar("bool", tok.Value)
	case *ast.NullNode:
		return scalar("null", "")
	case *ast.AnchorNode, *ast.AliasNode, *ast.MergeKeyNode:
		return nil, &yamlError{line, col, "anchors, aliases and merge keys are not supported in scenario files: write the value out"}
	case *ast.TagNode:
		return nil, &yamlError{line, col, "YAML tags (" + tok.Value + ") are not supported in scenario files"}
	}
	return nil, &yamlError{line, col, fmt.Sprintf("unsupported YAML construct (%s)", n.Type())}
}

func addPair(m *ynode, mv *ast.MappingValueNode, depth int) *yamlError {
	k, err := convert(mv.Key, depth+1)
	if err != nil {
		return err
	}
	if k.kind != yScalar || k.tag == "null" {
		return &yamlError{k.line, k.col, "a key must be a plain name"}
	}
	// Duplicate keys never get here: the parser refuses them, with both
	// places (TestScenarioErrors).
	var v *ynode
	if mv.Value == nil {
		v = &ynode{kind: yScalar, tag: "null", line: k.line, col: k.col}
	} else if v, err = convert(mv.Value, depth+1); err != nil {
		return err
	}
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
	return nil
}
