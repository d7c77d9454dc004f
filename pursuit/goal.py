"""Goals: the number a piece of research is after, and the budget it may spend.

A goal comes from YAML (``load_goal``) or from Python (``Goal(...)``); both are
validated by the same pydantic model. Errors from a file name the file, the line
and the field, say what was expected and what was found.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from pursuit.analysis.claims import Direction
from pursuit.exceptions import DialError, GoalError, MethodError
from pursuit.methods import Method, load_method

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# A goal file is a few levels deep and holds a few hundred values; these bounds leave
# ample room, and stop hostile files (see _GoalLoader) before they cost time or memory.
MAX_DEPTH = 100
MAX_ALIAS_VALUES = 10_000
_SHORT = reprlib.Repr()  # a value quoted in an error: short, however large the value
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 2, 4, 4, 40


class Budget(BaseModel):
    """What a goal may spend; any subset. With none given, 100 trials."""

    model_config = ConfigDict(extra="forbid")

    max_trials: int | None = Field(default=None, gt=0, le=10_000_000)
    compute_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    wall_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _default_trials(self) -> Budget:
        if self.max_trials is None and self.compute_seconds is None and self.wall_seconds is None:
            self.max_trials = 100
        return self


class AlgorithmSpec(BaseModel):
    """An Optuna sampler or pruner by name, with arguments for its class:
    ``{name: tpe, args: {n_startup_trials: 5}}``, or the name alone (``random``).
    The name, the packages it needs and the arguments are checked as the goal loads
    (see ``pursuit.search.SAMPLERS`` and ``PRUNERS``)."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str]

    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if not isinstance(value, dict | AlgorithmSpec):
            raise ValueError(f"a {cls.kind} is a name ({cls.kind}: name) or a mapping "
                             f"({cls.kind}: {{name: ..., args: {{...}}}})")
        return value

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from pursuit import search  # Optuna loads only where goals are run

        chosen = search.algorithm(cls.kind, name)
        missing = search.missing_package(chosen)
        if missing:
            raise ValueError(missing)
        return name

    @field_validator("args")
    @classmethod
    def _accepted(cls, args: dict[str, Any], info: Any) -> dict[str, Any]:
        from pursuit import search

        if "name" in info.data:  # (an unknown name is said already)
            search.check(cls.kind, info.data["name"], args)
        return args

    @model_validator(mode="after")
    def _made_without_args(self) -> AlgorithmSpec:
        # A name given alone: no args to validate above, yet the class may need one
        # (a percentile pruner without its percentile), refused as the goal loads.
        if "args" not in self.model_fields_set:
            from pursuit import search

            search.check(self.kind, self.name, {})
        return self


class SamplerSpec(AlgorithmSpec):
    kind = "sampler"


class PrunerSpec(AlgorithmSpec):
    kind = "pruner"


class MethodSpec(BaseModel):
    """One method of a goal: an entry point, or a Method object from Python."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entry: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    dials: dict[str, Any] = Field(default_factory=dict)
    search: bool = True
    study: bool = False  # climb its scaling ladder even when another method leads
    method: Method | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"entry": value}
        if isinstance(value, Method):
            return {"method": value}
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MethodSpec:
        if (self.entry is None) == (self.method is None):
            raise ValueError("give exactly one of 'entry' (module:function) or a Method object")
        return self

    def resolve(self, base_dir: Path | None) -> Method:
        """Import the method and apply the goal's overrides (its name, its default dials)."""
        loaded = self.method if self.method is not None else load_method(
            self.entry or "", base_dir=base_dir)
        if self.name is not None:
            loaded = loaded.__class__(**{**loaded.__dict__, "name": self.name})
        return loaded.with_defaults(self.dials) if self.dials else loaded


class ExecutorSpec(BaseModel):
    """Where trials run: ``processes`` (local worker processes, the default), ``inline``
    (in the engine's process) or ``ray`` (tasks on a Ray cluster), with what each trial
    asks of a Ray cluster: ``{name: ray, address: auto, num_cpus: 1, num_gpus: 0,
    memory: 2e9}``, or the name alone."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["processes", "inline", "ray"]
    address: str | None = None  # ray: "auto", "ray://host:10001"; none starts a local one
    num_cpus: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    num_gpus: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    memory: int | None = Field(default=None, gt=0)  # bytes a trial reserves on the cluster

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        return value

    @model_validator(mode="after")
    def _ray_options_need_ray(self) -> ExecutorSpec:
        asked = self.address is not None or self.num_gpus or self.memory is not None or \
            self.num_cpus != 1.0
        if self.name != "ray" and asked:
            raise ValueError("address, num_cpus, num_gpus and memory are Ray's: give them "
                             "with name: ray")
        return self


class Goal(BaseModel):
    """A metric, a direction, a target, a budget, the methods to try, and sub-goals;
    optionally the sampler and pruner of the dial search (default: TPE, median)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    statement: str = ""
    metric: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
    direction: Direction
    target: float | None = Field(default=None, allow_inf_nan=False)
    budget: Budget = Field(default_factory=Budget)
    seeds: int = Field(default=3, ge=1, le=100)
    trial_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sampler: SamplerSpec | None = None
    pruner: PrunerSpec | None = None
    executor: ExecutorSpec | None = None
    methods: list[MethodSpec] = Field(min_length=1)
    subgoals: list[Goal] = Field(default_factory=list)

    _base_dir: Path | None = PrivateAttr(default=None)
    _resolved: list[Method] | None = PrivateAttr(default=None)

    @field_validator("subgoals", mode="before")
    @classmethod
    def _subgoals_inherit(cls, value: Any, info: Any) -> Any:
        # A sub-goal shares its parent's direction, seeds, budget, timeout, sampler and
        # pruner, unless it says otherwise.
        if not isinstance(value, list):
            return value
        inherited = {k: info.data[k] for k in ("direction", "seeds", "budget", "trial_timeout",
                                               "sampler", "pruner", "executor")
                     if k in info.data}
        return [{**inherited, **item} if isinstance(item, dict) else item for item in value]

    def resolved_methods(self) -> list[Method]:
        """The goal's methods, imported and checked (cached)."""
        if self._resolved is None:
            self._resolved = _unique([spec.resolve(self._base_dir) for spec in self.methods])
        return self._resolved

    def searchable(self, method: Method) -> bool:
        spec = self.methods[self.resolved_methods().index(method)]
        return spec.search and bool(method.dials)

    def studied(self, method: Method) -> bool:
        """Whether the goal asks for the method's scaling even when it does not lead."""
        spec = self.methods[self.resolved_methods().index(method)]
        return spec.study and any(d.scale for d in method.dials.values())

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats ``b`` in this goal's direction."""
        return self.direction.better(a, b)

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description, stored with the goal's results."""
        data = self.model_dump(mode="json", exclude={"subgoals", "methods"})
        data["methods"] = [{"name": m.name, "entry": m.entry, "source": m.source,
                            "baseline": m.baseline, "search": self.searchable(m),
                            "study": self.studied(m), "defaults": m.defaults(),
                            "ranges": m.ranges(),
                            "scales": {n: d.scale for n, d in m.dials.items() if d.scale}}
                           for m in self.resolved_methods()]
        return data


def load_goal(path: str | Path) -> Goal:
    """Read and check a goal file; import its methods. Raises GoalError naming the line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GoalError(f"cannot read the goal file: {error.strerror}", file=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GoalError(f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be read; "
                        "save the file as UTF-8", file=str(path),
                        line=data.count(b"\n", 0, error.start) + 1) from None
    return parse_goal(text, file=str(path), base_dir=path.resolve().parent)


def parse_goal(text: str, *, file: str = "<goal>", base_dir: Path | None = None) -> Goal:
    try:
        loader = _GoalLoader(text, file)
        root = loader.get_single_node()  # one pass: the tree for line numbers, then the data
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as error:  # a character YAML forbids (NUL, controls)
        raise GoalError(f"not valid YAML: character #x{error.character:04x} is not allowed",
                        file=file, line=text.count("\n", 0, error.position) + 1) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        context_mark = getattr(error, "context_mark", None)
        if context and context_mark:
            problem += f" ({context} on line {context_mark.line + 1})"
        raise GoalError(f"not valid YAML: {problem}", file=file,
                        line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise GoalError(f"a goal file must be a mapping of fields (name, metric, ...), "
                        f"found {type(data).__name__}", file=file, line=1)
    try:
        goal = Goal.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        # reprlib stops early: a large value (aliases make them cheaply) is never spelled out.
        found_text = "nothing" if first["type"] == "missing" else _SHORT.repr(first.get("input"))
        raise GoalError(f"field '{field}': {first['msg']} (found {found_text})", file=file,
                        line=_line_of(root, loc), field=field) from None
    goal._base_dir = base_dir
    _resolve_all(goal, file, root, ("methods",))
    return goal


def _unique(methods: list[Method]) -> list[Method]:
    names = [m.name for m in methods]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise GoalError(f"two methods are named {duplicate!r}; give one a 'name:'",
                        field="methods")
    return methods


def _resolve_all(goal: Goal, file: str, root: yaml.Node | None, at: tuple[Any, ...]) -> None:
    """Import every method once, each error pointing at its own entry in the file."""
    methods = []
    for index, spec in enumerate(goal.methods):
        try:
            methods.append(spec.resolve(goal._base_dir))
        except (MethodError, DialError) as error:
            raise GoalError(str(error), file=file, line=_line_of(root, (*at, index)),
                            field=".".join(str(p) for p in (*at, index))) from None
    try:
        goal._resolved = _unique(methods)
    except GoalError as error:
        raise GoalError(str(error), file=file, line=_line_of(root, at), field="methods") from None
    for index, sub in enumerate(goal.subgoals):
        sub._base_dir = goal._base_dir
        _resolve_all(sub, file, root, (*at[:-1], "subgoals", index, "methods"))


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that exists in the YAML tree."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is not None:
                key = next(k for k, v in node.value if v is child)
                line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part < len(node.value):
                child = node.value[part]
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


class _GoalLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded as it builds the tree, before anything walks it.

    An alias makes a node appear again wherever it is used, so a few hundred bytes of
    aliases of aliases can stand for billions of values ("billion laughs"), and an alias
    inside the node it names stands for an endless one; nesting deep enough overflows
    Python's stack. Each node's expanded size and height are known when it is complete,
    so an alias is refused at its own line when it would take the goal past
    MAX_ALIAS_VALUES added values or MAX_DEPTH levels. A key given twice is refused here
    too, once per node, however often aliases repeat it.
    """

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0  # of the node being composed
        self.added = 0  # values that aliases have added so far
        self.extent: dict[int, tuple[int, int]] = {}  # id(node): (values, height), complete

    def refuse(self, message: str, mark: yaml.Mark) -> NoReturn:
        raise GoalError(message, file=self.file, line=mark.line + 1)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:  # (an undefined alias is PyYAML's to report)
                if id(node) not in self.extent:
                    self.refuse(f"alias *{event.anchor} is used inside the node it names",
                                event.start_mark)
                values, height = self.extent[id(node)]
                self.added += values
                if self.added > MAX_ALIAS_VALUES:
                    self.refuse(f"alias *{event.anchor} takes the goal past "
                                f"{MAX_ALIAS_VALUES:,} values repeated by aliases; a goal "
                                "needs far fewer (aliases of aliases multiply)",
                                event.start_mark)
                if self.depth + height > MAX_DEPTH:
                    self.refuse(f"alias *{event.anchor} nests the goal more than "
                                f"{MAX_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            self.refuse(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self.depth += 1
        node = super().compose_node(parent, index)
        self.depth -= 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):  # (a list as a key: the constructor's)
                    if key.value in seen:
                        raise GoalError(f"field '{key.value}' appears twice", file=self.file,
                                        line=key.start_mark.line + 1, field=str(key.value))
                    seen.add(key.value)
                children += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        extents = [self.extent[id(child)] for child in children]
        self.extent[id(node)] = (1 + sum(values for values, _ in extents),
                                 1 + max((height for _, height in extents), default=0))
        return node
