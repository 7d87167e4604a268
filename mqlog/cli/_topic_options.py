"""The topic config options of ``mqlog topics create`` and ``topics alter``: one
option per :class:`~mqlog.logstore.TopicConfig` field, made from
:func:`~mqlog.logstore.config.topic_settings`, so that a field added to
TopicConfig is an option of both commands with nothing to write here.

Field ``segment_bytes`` becomes ``--segment-bytes``, of the field's type (a
``Literal`` field takes one of its values), with the field's help text. A field
that may be None takes ``-1`` for None ("no limit"); a bool field takes ``yes``
or ``no`` (``--dead-letter-expired yes``), so that ``alter`` can turn it either
way. Values are checked
by TopicConfig itself: a bad one raises ConfigError (exit 2) before anything is
written. An option left out is not passed on, so ``create`` takes the default
and ``alter`` keeps the topic's current value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.markup import escape

from mqlog.logstore.config import TopicSetting, topic_settings

#: The ``--help`` panel that lists the topic config options.
PANEL = "Topic config"
#: The value that stands for None in an option whose field may be None.
NONE_VALUE = -1
#: The values of an option whose field is a bool.
_BOOLS = {"yes": True, "no": False}

Command = TypeVar("Command", bound=Callable[..., Any])


def flag(setting: TopicSetting) -> str:
    """The option of a setting: ``--segment-bytes`` for ``segment_bytes``."""
    return "--" + setting.name.replace("_", "-")


def topic_config_options(*, show_defaults: bool) -> Callable[[Command], Command]:
    """Give a command one option per TopicConfig field, after its own parameters.

    The command takes a keyword parameter ``config``: it receives the options
    given, as ``{field name: value}`` ready for ``TopicConfig.from_options``
    (``-1`` already None, ``yes``/``no`` already bools). ``show_defaults``: say
    TopicConfig's default in each option's help (``create``; ``alter`` keeps the
    current values).
    """
    settings = topic_settings()

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "config"]
        clash = {p.name for p in own} & {s.name for s in settings}
        if clash or "config" not in signature.parameters:
            raise TypeError(f"{command.__name__}: needs a 'config' parameter and no parameter "
                            f"named like a TopicConfig field ({', '.join(sorted(clash))})")
        generated = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                       annotation=_annotation(s, show_defaults))
                     for s in settings]

        @functools.wraps(command)
        def wrapper(**arguments: Any) -> Any:
            given = {s.name: arguments.pop(s.name) for s in settings}
            return command(**arguments, config=given_config(given))

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *generated])
        return wrapper  # type: ignore[return-value]

    return decorate


def given_config(values: dict[str, Any]) -> dict[str, Any]:
    """The options given (not None) as TopicConfig values: ``-1`` is None where a
    field may be None, ``yes``/``no`` are True/False where it is a bool."""
    settings = {s.name: s for s in topic_settings()}
    config = {}
    for name, value in values.items():
        if value is None:
            continue
        if settings[name].type is bool:
            value = _BOOLS[value]
        elif settings[name].optional and value == NONE_VALUE:
            value = None
        config[name] = value
    return config


def _annotation(setting: TopicSetting, show_default: bool) -> Any:
    """``Annotated[type | None, typer.Option(...)]`` of one setting."""
    kind: Any = setting.type
    if setting.choices:
        kind = Literal[setting.choices]
    elif setting.type is bool:
        kind = Literal[tuple(_BOOLS)]
    option = typer.Option(flag(setting), help=escape(_help(setting, show_default)),
                          show_default=False, rich_help_panel=PANEL)
    return Annotated[kind | None, option]


def _help(setting: TopicSetting, show_default: bool) -> str:
    text = setting.help
    if setting.optional:
        text += f" {NONE_VALUE}: {setting.none}"
        text += " (the default)." if show_default and setting.default is None else "."
    if not show_default or setting.default is None:
        return text
    if setting.type is bool:
        default = next(word for word, value in _BOOLS.items() if value == setting.default)
    else:
        default = str(setting.default)
    return f"{text} Default: {default}."
