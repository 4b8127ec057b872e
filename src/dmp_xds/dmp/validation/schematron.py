"""ISO Schematron (XSLT 2 query binding) compiled to XSLT 3 and run with Saxon (saxonche).

The ANS publishes its CDA rules as ISO Schematron for XSLT 2 (`queryBinding="xslt2"`) with
includes, abstract patterns and rules, and `let` variables; lxml's `isoschematron` runs XSLT 1
only, and the kit's compiled stylesheets are not published. So this module does what the ISO
"skeleton" does, for the subset of Schematron the ANS files use:

1. `assemble`: read a schema and replace each `include` by the element of the file it names
   (relative to the including file), recursively;
2. `compile_schematron` (pure: tree in, stylesheet text out): instantiate abstract patterns
   (`is-a` + `param`: `$name` substituted in the query attributes), expand `extends` with the
   abstract rules' content, keep the patterns of the default phase, and write one XSLT 3 mode
   per pattern. In a pattern a node is checked by the first rule whose context matches it
   (ISO Schematron §6.5): each rule is a template with a priority that decreases in document
   order. Pattern-level `let`s are global variables, as in the ISO skeleton (the ANS volets
   declare their value set paths in a "variables" pattern that the other patterns use).
   The ISO skeleton walks the whole document through each pattern's templates; Saxon then
   tries every rule ending in a wildcard (`.../*[not(self::a | ...)]`: the 148 rules of the
   structuration minimale's "closed" pattern) on every element, which cost 100 to 200 ms per
   document. Instead each pattern applies its templates only to its candidates: the nodes its
   rule contexts select from the document node (`_candidate_branches`: by the XSLT definition
   a node matches a pattern P when it is in `root()//(P)`, so this finds every node the walk
   would have checked, usually a handful), in document order, through the same templates and
   priorities: the verdicts and their order do not change;
3. `SchematronValidator`: Saxon compiles the stylesheet once; `validate` runs it on a document
   and returns every failed `assert` and successful `report` with its location (an XPath with
   the schema's prefixes).

The stylesheet's static base URI is the schema file's (`xml:base`), so that the relative paths
the ANS rules give to `document()` / `doc()` (value sets, ART-DECOR vocabularies) resolve as they
do in the ANS tool. Those documents are parsed once and handed to every run (`$dmp:documents`):
without that, Saxon would parse them again on every validation.
"""

from __future__ import annotations

import copy
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from dmp_xds.xds.vocabulary import NS_HL7

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
# Our own namespace for the result list and the helper function of the generated stylesheets.
DMP = "urn:dmp-xds:schematron"
XML_NS = "http://www.w3.org/XML/1998/namespace"
MAP = "http://www.w3.org/2005/xpath-functions/map"

_QUERY_ATTRIBUTES = ("context", "test", "select", "value", "path")
# document('x') / doc('x') calls (not doc-available(), not a prefixed function).
_DOC_CALL = re.compile(r"(?<![\w:.\-])(document|doc)\s*\(")
_STRING_LITERAL = re.compile(r"""'([^']*\.xml)'|"([^"]*\.xml)\"""")
_WARNING_ROLES = frozenset({"warning", "warn", "info", "information"})


class SchematronError(Exception):
    """A schematron cannot be read or compiled; the message names the file and the cause."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed assert (or a successful report) at one node of the document."""

    schema: str  # the schematron's file name
    pattern: str  # pattern id (or title)
    rule: str  # rule id (or its context)
    role: str  # the assert's role: "error" unless the schematron says otherwise
    location: str  # XPath of the node, with the schema's prefixes
    message: str  # the assert's text, whitespace collapsed

    @property
    def is_warning(self) -> bool:
        return self.role.lower() in _WARNING_ROLES


def _sch(name: str) -> str:
    return f"{{{SCH}}}{name}"


def _is_sch(element: object, name: str) -> bool:
    return isinstance(element, etree._Element) and element.tag == _sch(name)


# --- 1. includes -----------------------------------------------------------------------------


def _read(path: Path) -> etree._Element:
    try:
        # The schematrons are configuration written by the deployment (or ANS), not input from a
        # client; still no network and no entities.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
        return etree.parse(str(path), parser).getroot()
    except OSError as exc:
        raise SchematronError(f"schematron {path} cannot be read: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise SchematronError(f"schematron {path} is not well-formed XML: {exc}") from exc


def assemble(path: Path) -> etree._Element:
    """The schema of `path` with every `include` replaced by the element it names."""
    root = _read(path)
    _resolve_includes(root, path, (path.resolve(),))
    return root


def _existing(target: Path) -> Path | None:
    """`target`, or the one file of its folder whose name differs from it only in case. ANS
    writes and runs its kit on Windows, whose file names ignore case: IHE.sch includes
    E_directiveAnticipee_int.sch, which the kit has as E_directiveanticipee_int.sch (likewise a
    CSE-CS8 value set and an OBP-SAP section)."""
    if target.is_file():
        return target
    if not target.parent.is_dir():
        return None
    same = [p for p in target.parent.iterdir() if p.name.lower() == target.name.lower() and p.is_file()]
    return same[0] if len(same) == 1 else None


def _resolve_includes(element: etree._Element, path: Path, chain: tuple[Path, ...]) -> None:
    for include in list(element.iter(_sch("include"))):
        href = include.get("href", "")
        found = _existing((path.parent / href).resolve())
        if found is None:
            raise SchematronError(
                f"schematron {path}: included file {href} ({(path.parent / href).resolve()}) does not exist"
            )
        target = found.resolve()
        if target in chain:
            raise SchematronError(f"schematron {path}: include {href} includes itself")
        included = _read(target)
        _resolve_includes(included, target, chain + (target,))
        included.tail = include.tail
        parent = include.getparent()
        if parent is None:
            raise SchematronError(f"schematron {path}: include cannot be the root element")
        parent.replace(include, included)


# --- 2. compilation ----------------------------------------------------------------------------


def _substitute(text: str, params: dict[str, str]) -> str:
    # Longest names first, and a name ends where an NCName would: $path never rewrites $path_jdv.
    for name in sorted(params, key=len, reverse=True):
        text = re.sub(r"\$" + re.escape(name) + r"(?![\w.\-])", _literally(params[name]), text)
    return text


def _literally(value: str) -> Callable[[re.Match[str]], str]:
    # A replacement function's result is taken as it is: no \1 or \g<name> in it is expanded.
    return lambda _match: value


def _instantiate(instance: etree._Element, abstract: etree._Element) -> etree._Element:
    params = {p.get("name", ""): p.get("value", "") for p in instance if _is_sch(p, "param")}
    pattern = etree.Element(_sch("pattern"), nsmap=abstract.nsmap)
    pattern.set("id", instance.get("id") or instance.get("is-a", ""))
    for child in abstract:
        pattern.append(copy.deepcopy(child))
    for element in pattern.iter():
        if isinstance(element.tag, str):
            for attribute in _QUERY_ATTRIBUTES:
                value = element.get(attribute)
                if value is not None:
                    element.set(attribute, _substitute(value, params))
    return pattern


def _patterns(schema: etree._Element) -> list[etree._Element]:
    """The concrete patterns, abstract ones instantiated, in document order."""
    all_patterns = [p for p in schema.iter(_sch("pattern"))]
    abstract = {p.get("id"): p for p in all_patterns if p.get("abstract") == "true"}
    out: list[etree._Element] = []
    for pattern in all_patterns:
        if pattern.get("abstract") == "true":
            continue
        is_a = pattern.get("is-a")
        if is_a:
            if is_a not in abstract:
                raise SchematronError(f"pattern {pattern.get('id')} is-a {is_a}: no abstract pattern has that id")
            out.append(_instantiate(pattern, abstract[is_a]))
        else:
            out.append(pattern)
    return out


def _active_pattern_ids(schema: etree._Element, phase: str | None) -> set[str] | None:
    """The ids of the phase's active patterns; None: every pattern (#ALL or no phase)."""
    wanted = phase or schema.get("defaultPhase")
    if not wanted or wanted == "#ALL":
        return None
    for candidate in schema.iter(_sch("phase")):
        if candidate.get("id") == wanted:
            return {a.get("pattern", "") for a in candidate.iter(_sch("active"))}
    raise SchematronError(f"phase {wanted} is not defined")


def _expand_rule(
    rule: etree._Element, abstract_rules: dict[str, etree._Element], seen: tuple[str, ...] = ()
) -> Iterator[etree._Element]:
    """The rule's lets, asserts and reports, `extends` replaced by the abstract rule's content."""
    for child in rule:
        if _is_sch(child, "extends"):
            target = child.get("rule", "")
            if target in seen:
                raise SchematronError(f"abstract rule {target} extends itself")
            if target not in abstract_rules:
                raise SchematronError(f"rule extends {target}: no abstract rule has that id")
            yield from _expand_rule(abstract_rules[target], abstract_rules, seen + (target,))
        elif _is_sch(child, "let") or _is_sch(child, "assert") or _is_sch(child, "report"):
            yield child


def _namespaces(schema: etree._Element) -> dict[str, str]:
    """Prefix -> URI: the schema's `ns` declarations, then the XML namespace declarations in scope
    in the (assembled) schema, which some included files rely on."""
    namespaces: dict[str, str] = {}
    for ns in schema.iter(_sch("ns")):
        namespaces.setdefault(ns.get("prefix", ""), ns.get("uri", ""))
    for element in schema.iter():
        if isinstance(element.tag, str):
            for prefix, uri in element.nsmap.items():
                if prefix and uri not in (SCH,):
                    namespaces.setdefault(prefix, uri)
    namespaces.pop("xml", None)
    namespaces.pop("", None)
    return namespaces


def _xsl(parent: etree._Element, local_name: str, /, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{XSL}}}{local_name}")
    for key, value in attributes.items():
        element.set(key.rstrip("_").replace("_", "-"), value)
    return element


def _rewrite_doc_calls(expression: str) -> str:
    return _DOC_CALL.sub("dmp:doc(", expression)


def _depths(expression: str) -> list[int | None]:
    """Each character's nesting depth in brackets, parentheses and braces (a bracket itself
    counts as outside), or None inside a string literal."""
    out: list[int | None] = []
    depth, quote = 0, ""
    for char in expression:
        if quote:
            out.append(None)
            quote = "" if char == quote else quote
        elif char in "'\"":
            out.append(None)
            quote = char
        elif char in "([{":
            out.append(depth)
            depth += 1
        elif char in ")]}":
            depth -= 1
            out.append(depth)
        else:
            out.append(depth)
    return out


def _top_level(expression: str) -> Iterator[tuple[int, str]]:
    """(index, character) of the characters of `expression` outside brackets, parentheses,
    braces and string literals."""
    for index, (char, depth) in enumerate(zip(expression, _depths(expression), strict=True)):
        if depth == 0 and char not in "()[]{}":
            yield index, char


_SET_OPERATOR = re.compile(r"(?<![\w:.\-$])(union|intersect|except)(?![\w:.\-])")


def _candidate_branches(context: str) -> list[tuple[str, str]]:
    """How to select, from the document node, every node of the document that the match
    pattern `context` matches (and maybe more, never fewer): (start, path) pairs, one per
    branch of the pattern, meaning `start ! (.path)`; start "/" is the document node.

    XSLT 3.0 §5.5.3: a node N matches a pattern P when N is in `root(N)//(P)`. Written that way
    Saxon evaluates P from every node; so each branch of a union is cut after its first step:
    `(//step) ! (./rest)` selects the nodes of `//(step/rest)` (the path operator is
    associative; the caller puts them in document order). Saxon finds `//name[...]` with one
    scan of the tree, then walks down from the few nodes found, and the rules of a pattern
    mostly start with the same step (`//hl7:ClinicalDocument[...]`), found once. Given
    `//a/b/*` (or `(//a)/b/*`) Saxon instead tests every element of the document against the
    whole path, 40 times slower. A path from the root (`/a/b`) is kept as it is. A pattern with
    `union`, `intersect` or `except` keeps the general form."""
    expression = context.strip()
    flat = "".join(char for _, char in _top_level(expression))
    if _SET_OPERATOR.search(flat):
        return [("/", f"/descendant-or-self::node()/({expression})")]
    cuts = [index for index, char in _top_level(expression) if char == "|"]
    branches = [
        expression[start + 1 : end].strip() for start, end in zip([-1, *cuts], [*cuts, len(expression)], strict=True)
    ]
    out = []
    for branch in branches:
        if branch.startswith("/") and not branch.startswith("//"):
            out.append(("/", "" if branch == "/" else branch))
            continue
        path = branch.removeprefix("//")
        slash = next((index for index, char in _top_level(path) if char == "/"), len(path))
        out.append((f"//{path[:slash]}", path[slash:]))
    return out


# A template's elements, found by their templateId: what most ANS rule contexts start with. A map
# from each templateId root to the elements that have a templateId child with that root, in
# document order (what `key()` on those would give), the entry 0 the document it indexes. Made
# once per document for all the schematrons that check it (`SaxonDocument.template_index`): a
# key would be indexed again by each stylesheet.
_TEMPLATES_PARAM = "dmp:templates"
_TEMPLATES_OF = (
    f"Q{{{MAP}}}merge((Q{{{MAP}}}entry(0, $document), "
    f"for $element in $document//Q{{{NS_HL7}}}templateId/parent::*, "
    f"$root in distinct-values($element/Q{{{NS_HL7}}}templateId/@root ! string(.)) "
    f"return Q{{{MAP}}}entry($root, $element)), map{{'duplicates': 'combine'}})"
)
_TEMPLATE_CONDITION = re.compile(
    r"""^(?:\./)?([\w.\-]+):templateId(?:/@root\s*=\s*('[^']*'|"[^"]*")|"""
    r"""\[\s*@root\s*=\s*('[^']*'|"[^"]*")\s*\])$"""
)


def _split_keyword(expression: str, keyword: str) -> list[str]:
    """`expression` cut at each top-level ` keyword ` (and, or)."""
    depths = _depths(expression)
    parts, start = [], 0
    for match in re.finditer(rf"\s+{keyword}\s+", expression):
        if depths[match.start()] == 0:
            parts.append(expression[start : match.start()])
            start = match.end()
    parts.append(expression[start:])
    return [part.strip() for part in parts]


def _predicates(step: str) -> list[str]:
    """The contents of a step's top-level predicates `[...]`."""
    depths, out, opened = _depths(step), [], 0
    for index, char in enumerate(step):
        if char == "[" and depths[index] == 0:
            opened = index + 1
        elif char == "]" and depths[index] == 0:
            out.append(step[opened:index])
    return out


def _template_key(start: str, hl7_prefixes: frozenset[str]) -> str | None:
    """For a first step `//name[... templateId/@root = 'X' and ...]` (the templateId condition a
    conjunct of one of its predicates), the elements with that templateId (from the document's
    template index), which hold every node the step selects, found without scanning the
    document. None for any other step."""
    for predicate in _predicates(start):
        for conjunct in _split_keyword(predicate.strip(), "and"):
            # (condition) is the condition, (a or b) is not a conjunct.
            while (
                conjunct.startswith("(")
                and conjunct.endswith(")")
                and _depths(conjunct)[-1] == 0
                and all(d is None or d > 0 for d in _depths(conjunct)[1:-1])
            ):
                conjunct = conjunct[1:-1].strip()
            match = _TEMPLATE_CONDITION.match(conjunct)
            if match and match.group(1) in hl7_prefixes:
                return f"Q{{{MAP}}}get($dmp:by-template, {match.group(2) or match.group(3)})"
    return None


def _needs(expression: str, unavailable: frozenset[str], variables: dict[str, list[str]]) -> list[str]:
    """The documents that do not exist an expression reads: named in it, or through a variable
    whose value names them (the ANS volets keep their value set paths in pattern `let`s)."""
    found = {d for d in unavailable if d in expression}
    for name, documents in variables.items():
        if re.search(r"\$" + re.escape(name) + r"(?![\w.\-])", expression):
            found.update(documents)
    return sorted(found)


def _avt(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _message(target: etree._Element, check: etree._Element) -> None:
    """The assert's mixed content: text, value-of and name."""
    if check.text:
        _xsl(target, "text").text = check.text
    for child in check:
        if _is_sch(child, "value-of"):
            _xsl(target, "value-of", select=_rewrite_doc_calls(child.get("select", "")))
        elif _is_sch(child, "name"):
            _xsl(target, "value-of", select=f"name({child.get('path', '.')})")
        elif isinstance(child.tag, str):  # emph, dir, span: their text
            _xsl(target, "text").text = "".join(child.itertext())
        if child.tail:
            _xsl(target, "text").text = child.tail


@dataclass(frozen=True, slots=True)
class Compiled:
    xslt: str  # the stylesheet
    skipped: tuple[str, ...]  # the asserts left out, each with the reason


def compile_schematron(
    schema: etree._Element, base_uri: str, phase: str | None = None, unavailable: frozenset[str] = frozenset()
) -> Compiled:
    """The XSLT 3 stylesheet of an assembled schema. Its result is a `dmp:findings` element with
    one `dmp:finding` (attributes pattern, rule, role, location; the message as text) per failed
    assert or successful report.

    `unavailable`: document paths, as the schema writes them, that do not exist. An assert whose
    test reads one cannot be evaluated (Saxon would stop the whole run): it is left out and
    listed in `skipped` (the ANS kit's structuration minimale names a typeCode vocabulary,
    voc-1.2.250.1.213.1.1.5.471, that ANS does not publish)."""
    if schema.tag != _sch("schema"):
        raise SchematronError(f"not an ISO Schematron schema: root element {schema.tag}")
    binding = (schema.get("queryBinding") or "xslt").lower()
    if binding not in ("xslt", "xslt2", "xslt3"):
        raise SchematronError(f"query binding {binding} is not supported (xslt, xslt2, xslt3)")
    namespaces = _namespaces(schema)
    nsmap = {**namespaces, "xsl": XSL, "dmp": DMP, "xs": "http://www.w3.org/2001/XMLSchema"}
    stylesheet = etree.Element(f"{{{XSL}}}stylesheet", nsmap=nsmap)
    stylesheet.set("version", "3.0")
    stylesheet.set(f"{{{XML_NS}}}base", base_uri)
    stylesheet.set("exclude-result-prefixes", " ".join(p for p in nsmap if p not in ("dmp",)))
    _xsl(stylesheet, "output", method="xml", indent="no")
    # Documents parsed once by the caller, looked up by their absolute URI before doc() is tried
    # (a map: the ANS rules call doc() in the predicates of their tests, thousands of times).
    _xsl(stylesheet, "param", name="dmp:documents", as_="document-node()*", select="()")
    _xsl(
        stylesheet,
        "variable",
        name="dmp:by-uri",
        select=f"Q{{{MAP}}}merge($dmp:documents ! Q{{{MAP}}}entry(base-uri(.), .), map{{'duplicates': 'use-first'}})",
    )
    function = _xsl(stylesheet, "function", name="dmp:doc", as_="document-node()?")
    _xsl(function, "param", name="uri", as_="xs:string?")
    _xsl(function, "variable", name="absolute", select="resolve-uri($uri, static-base-uri())")
    _xsl(
        function,
        "variable",
        name="cached",
        select=f"if (exists($absolute)) then Q{{{MAP}}}get($dmp:by-uri, $absolute) else ()",
    )
    _xsl(
        function,
        "sequence",
        select="if (exists($cached)) then $cached else if (doc-available($absolute)) then doc($absolute) else ()",
    )

    abstract_rules = {r.get("id", ""): r for r in schema.iter(_sch("rule")) if r.get("abstract") == "true"}
    patterns = _patterns(schema)
    active = _active_pattern_ids(schema, phase)
    globals_seen: dict[str, str] = {}
    skipped: list[str] = []
    for pattern in patterns:
        for let in pattern:
            if _is_sch(let, "let"):
                name, value = let.get("name", ""), _rewrite_doc_calls(let.get("value", ""))
                if name in globals_seen:
                    if globals_seen[name] != value:
                        raise SchematronError(f"pattern variable ${name} is declared twice with different values")
                    continue
                globals_seen[name] = value
                _xsl(stylesheet, "variable", name=name, select=value)
    # Variables naming a document that does not exist: the checks reading them are left out too.
    global_needs = {name: needed for name, value in globals_seen.items() if (needed := _needs(value, unavailable, {}))}
    # The document's template index, given by the caller or made here (only if a rule needs it).
    _xsl(stylesheet, "param", name=_TEMPLATES_PARAM, as_="map(*)?", select="()")
    _templates_function(stylesheet)
    hl7_prefixes = frozenset(prefix for prefix, uri in namespaces.items() if uri == NS_HL7)
    root = _xsl(stylesheet, "template", match="/")
    _xsl(root, "variable", name="dmp:root", select="/")
    given = f"${_TEMPLATES_PARAM}"
    _xsl(
        root,
        "variable",
        name="dmp:by-template",
        as_="map(*)",
        select=f"if (exists({given}) and {given}(0) is $dmp:root) then {given} else dmp:templates-of($dmp:root)",
    )
    starts = {"/": "$dmp:root"}  # the first steps of the rule contexts -> the variable holding their nodes
    findings = etree.SubElement(root, f"{{{DMP}}}findings")
    for number, pattern in enumerate(patterns):
        pattern_id = pattern.get("id") or pattern.findtext(_sch("title")) or f"pattern {number + 1}"
        if active is not None and pattern.get("id") not in active:
            continue
        rules = [r for r in pattern if _is_sch(r, "rule") and r.get("abstract") != "true"]
        if not rules:
            continue
        mode, candidates = f"dmp:p{number}", f"dmp:c{number}"
        # A candidate that no rule matches is skipped with its subtree: its descendants that a
        # rule matches are candidates themselves.
        _xsl(stylesheet, "mode", name=mode, on_no_match="deep-skip")
        selection = _xsl(findings, "variable", name=candidates, as_="node()*")
        # Only nodes the skeleton's walk would visit: this document, no attributes.
        _xsl(
            findings,
            "apply-templates",
            mode=mode,
            select=f"(${candidates} | ())[not(. instance of attribute())][root(.) is $dmp:root]",
        )
        for index, rule in enumerate(rules):
            context = rule.get("context")
            if not context:
                raise SchematronError(f"pattern {pattern_id}: a rule has no context")
            rule_id = rule.get("id") or context
            missing = _needs(context, unavailable, global_needs)
            if missing:
                # Saxon treats an error while matching a pattern as "does not match": such a
                # rule never fired; leaving it out is the same.
                skipped.append(
                    f"{pattern_id} / {rule_id}: its context needs {', '.join(sorted(missing))}, which does not exist"
                )
                continue
            context = _rewrite_doc_calls(context)
            # An error selecting the candidates (a cast the context's predicates make on some
            # node...) would stop the run where matching that node only fails to match: then
            # every node is a candidate and the templates decide, as before.
            branches = []
            for start, path in _candidate_branches(context):
                if start not in starts:
                    starts[start] = f"$dmp:s{len(starts)}"
                    # If the step fails, every node: the paths from them select too much, never
                    # too little.
                    step = _xsl(root, "variable", name=starts[start][1:], as_="node()*")
                    findings.addprevious(step)  # declared before the findings that use it
                    select = _template_key(start, hl7_prefixes) or start
                    _xsl(_xsl(step, "try", select=select), "catch", select="descendant-or-self::node()")
                branches.append(f"{starts[start]} ! (.{path})" if path else starts[start])
            attempt = _xsl(selection, "try", select=" | ".join(branches))
            _xsl(attempt, "catch", select="descendant-or-self::node()")
            template = _xsl(stylesheet, "template", match=context, mode=mode, priority=str(len(rules) - index))
            needs = dict(global_needs)
            for check in _expand_rule(rule, abstract_rules):
                if _is_sch(check, "let"):
                    _xsl(
                        template,
                        "variable",
                        name=check.get("name", ""),
                        select=_rewrite_doc_calls(check.get("value", "")),
                    )
                    needs.pop(check.get("name", ""), None)  # a rule's let hides a global one
                    if needed := _needs(check.get("value", ""), unavailable, needs):
                        needs[check.get("name", "")] = needed
                    continue
                missing = _needs(check.get("test", ""), unavailable, needs)
                if missing:
                    skipped.append(f"{pattern_id} / {rule_id}: needs {', '.join(missing)}, which does not exist")
                    continue
                test = _rewrite_doc_calls(check.get("test", ""))
                condition = f"not({test})" if _is_sch(check, "assert") else f"({test})"
                branch = _xsl(template, "if", test=condition)
                finding = etree.SubElement(branch, f"{{{DMP}}}finding")
                finding.set("pattern", _avt(pattern_id))
                finding.set("rule", _avt(rule_id))
                finding.set("role", _avt(check.get("role") or "error"))
                finding.set("location", "{path()}")
                _message(finding, check)
    return Compiled(etree.tostring(stylesheet, encoding="unicode"), tuple(skipped))


def _templates_function(stylesheet: etree._Element) -> None:
    function = _xsl(stylesheet, "function", name="dmp:templates-of", as_="map(*)")
    _xsl(function, "param", name="document", as_="document-node()")
    _xsl(function, "sequence", select=_TEMPLATES_OF)


def _template_index_stylesheet() -> str:
    """The stylesheet that makes a document's template index (its result, a map)."""
    stylesheet = etree.Element(f"{{{XSL}}}stylesheet", nsmap={"xsl": XSL, "dmp": DMP})
    stylesheet.set("version", "3.0")
    _templates_function(stylesheet)
    _xsl(_xsl(stylesheet, "template", match="/", as_="map(*)"), "sequence", select="dmp:templates-of(.)")
    text: str = etree.tostring(stylesheet, encoding="unicode")
    return text


def document_literals(schema: etree._Element) -> list[str]:
    """The XML file paths the schema's expressions write as string literals (value sets,
    vocabularies): what `document()` / `doc()` will be asked for, relative to the schema file."""
    found: dict[str, None] = {}
    for element in schema.iter():
        if isinstance(element.tag, str):
            for attribute in ("value", "test", "select", "context"):
                for match in _STRING_LITERAL.finditer(element.get(attribute) or ""):
                    found[match.group(1) or match.group(2)] = None
    return list(found)


# --- 3. running ----------------------------------------------------------------------------------


_PREFIXED_STEP = re.compile(r"Q\{([^}]*)\}")
_TEMPLATES_NAME = "{" + DMP + "}" + _TEMPLATES_PARAM.removeprefix("dmp:")
_PROCESSOR: Any = None
_DISALLOW_DOCTYPE = (
    "http://saxon.sf.net/feature/parserFeature?uri=http%3A//apache.org/xml/features/disallow-doctype-decl"
)
_PROCESSOR_LOCK = threading.Lock()


def _processor() -> Any:
    """The process's Saxon processor, shared by every schematron: Saxon runs a stylesheet only on
    documents its own processor built, and a document is parsed once for all the schematrons
    that check it."""
    global _PROCESSOR
    with _PROCESSOR_LOCK:
        if _PROCESSOR is None:
            from saxonche import PySaxonProcessor  # a large native module: imported when used

            _PROCESSOR = PySaxonProcessor(license=False)
            # Saxon's own parser refuses any DOCTYPE, as `parse_bytes` does: it can then be given
            # the bytes a client sent (no entity, no external subset can be opened), not a copy
            # serialized again from lxml's tree. The ANS files it reads have none.
            _PROCESSOR.set_configuration_property(_DISALLOW_DOCTYPE, "true")
        return _PROCESSOR


@dataclass(frozen=True, slots=True)
class SaxonDocument:
    """An XML document parsed by Saxon, for `SchematronValidator.validate`."""

    node: Any  # saxonche PyXdmNode
    _template_index: list[Any] = field(default_factory=list, compare=False, repr=False)

    def template_index(self) -> Any:
        """The document's template index (see `_TEMPLATES_OF`), made on the first call: every
        schematron that checks the document is given it."""
        if not self._template_index:
            self._template_index.append(_template_indexer().transform_to_value(xdm_node=self.node))
        return self._template_index[0]


_INDEXER: Any = None
_INDEXER_LOCAL = threading.local()


def _template_indexer() -> Any:
    """This thread's clone of the compiled template index stylesheet (compiled once per process)."""
    global _INDEXER
    executable = getattr(_INDEXER_LOCAL, "executable", None)
    if executable is None:
        processor = _processor()
        with _PROCESSOR_LOCK:
            if _INDEXER is None:
                _INDEXER = processor.new_xslt30_processor().compile_stylesheet(
                    stylesheet_text=_template_index_stylesheet()
                )
        executable = _INDEXER.clone()
        executable.set_result_as_raw_value(True)
        _INDEXER_LOCAL.executable = executable
    return executable


def parse_document(document: str | bytes) -> SaxonDocument:
    """Saxon's tree of an XML document the caller has already parsed safely (no DTD, no
    entities), as bytes or text. saxonche parses text or a file, not bytes: bytes are written to
    a temporary file that Saxon reads, 40 % faster than from text (6 instead of 10 ms for 1 MB)
    and with the encoding its XML declaration names, as the ANS tool reads a file. Text is taken
    as characters (its declaration's encoding is not read again). SchematronError if Saxon
    cannot read it."""
    if isinstance(document, str):
        return _parsed(lambda: _processor().parse_xml(xml_text=document, encoding="UTF-8"))
    try:
        with tempfile.NamedTemporaryFile(prefix="dmp-xds-", suffix=".xml") as file:
            file.write(document)
            file.flush()
            return parse_file(Path(file.name))
    except OSError as exc:
        raise SchematronError(f"the document cannot be handed to Saxon: {exc}") from exc


def parse_file(path: Path) -> SaxonDocument:
    """`parse_document` of the bytes of a file the caller has already parsed safely (the
    repository's temporary file of a received document): Saxon reads it where it is, without
    a copy. SchematronError if Saxon cannot read it."""
    return _parsed(lambda: _processor().parse_xml(xml_file_name=str(path.resolve())))


def _parsed(parse: Callable[[], Any]) -> SaxonDocument:
    from saxonche import PySaxonApiError

    try:
        return SaxonDocument(parse())
    except PySaxonApiError as exc:
        raise SchematronError(f"Saxon cannot read the document: {exc}") from exc


class SchematronValidator:
    """One compiled schematron. Saxon executables are not thread-safe: each thread runs its own
    clone, made on its first document."""

    def __init__(self, path: Path, phase: str | None = None) -> None:
        from saxonche import PySaxonApiError

        self.path = path
        self.name = path.name
        schema = assemble(path)
        self._prefixes = {uri: prefix for prefix, uri in sorted(_namespaces(schema).items(), reverse=True)}
        literals = {name: (path.parent / name).resolve() for name in document_literals(schema)}
        unavailable = frozenset(name for name, target in literals.items() if not target.is_file())
        compiled = compile_schematron(schema, path.resolve().as_uri(), phase, unavailable)
        self.skipped = compiled.skipped
        processor = _processor()
        try:
            self._executable = processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=compiled.xslt)
        except PySaxonApiError as exc:
            raise SchematronError(f"schematron {path} does not compile: {exc}") from exc
        self._documents = processor.empty_sequence()
        for document in sorted({t for t in literals.values() if t.is_file()}):
            try:
                self._documents.add_xdm_item(processor.parse_xml(xml_file_name=str(document)))
            except PySaxonApiError as exc:
                raise SchematronError(f"schematron {path}: {document} cannot be parsed: {exc}") from exc
        self._local = threading.local()

    def _clone(self) -> Any:
        executable = getattr(self._local, "executable", None)
        if executable is None:
            executable = self._executable.clone()
            executable.set_parameter("{" + DMP + "}documents", self._documents)
            self._local.executable = executable
        return executable

    def validate(self, document: str | bytes | SaxonDocument) -> list[Finding]:
        """Every finding of the schematron on one XML document: text, bytes, or parsed by
        `parse_document` when several schematrons check it."""
        from saxonche import PySaxonApiError

        try:
            parsed = document if isinstance(document, SaxonDocument) else parse_document(document)
        except SchematronError as exc:
            return [Finding(self.name, "", "", "error", "", f"the schematron could not run: {exc}")]
        executable = self._clone()
        try:
            executable.set_parameter(_TEMPLATES_NAME, parsed.template_index())
            result = executable.transform_to_string(xdm_node=parsed.node)
        except PySaxonApiError as exc:
            return [Finding(self.name, "", "", "error", "", f"the schematron could not run: {exc}")]
        finally:
            executable.remove_parameter(_TEMPLATES_NAME)  # the document is not kept alive by it
        return self._findings(result or "")

    def _findings(self, result: str) -> list[Finding]:
        root = etree.fromstring(result.encode("utf-8"))
        out = []
        for finding in root.iter(f"{{{DMP}}}finding"):
            location = _PREFIXED_STEP.sub(self._prefix, finding.get("location", ""))
            out.append(
                Finding(
                    self.name,
                    finding.get("pattern", ""),
                    finding.get("rule", ""),
                    finding.get("role", "error"),
                    location,
                    " ".join("".join(finding.itertext()).split()),
                )
            )
        return out

    def _prefix(self, match: re.Match[str]) -> str:
        prefix = self._prefixes.get(match.group(1))
        return f"{prefix}:" if prefix else match.group(0)
