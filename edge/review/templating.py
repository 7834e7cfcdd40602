"""The Jinja2 environment of the review app and the report: templates shipped as package data, every
value escaped, and filters that show codes and times as people read them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from edge.review import present


def environment(zone: ZoneInfo) -> Environment:
    env = Environment(
        loader=PackageLoader("edge.review", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda text, seconds=True: present.local_time(text, zone, seconds)
    env.filters["age"] = present.age_text
    env.filters["count"] = lambda number: f"{number:,}"
    env.filters["percent"] = present.percent
    env.filters["noun"] = present.noun
    env.filters["type_name"] = lambda key: present.name(present.TYPES, key)
    env.filters["severity_name"] = lambda key: present.name(present.SEVERITIES, key)
    env.filters["outcome_name"] = lambda key: present.name(present.OUTCOME_NAMES, key)
    env.filters["resolution"] = lambda key: present.name(present.RESOLUTIONS, key)
    return env
