"""Seeded long chatbot conversations with planted facts, for ``memory_e2e.py``.

A conversation is a run of topics (debugging Python, a slow SQL query, a trip, a kitchen
renovation, a budget, a deploy script, cooking, learning Chinese, team planning, an
e-mail to write), each a few exchanges of user and assistant turns of 20 to 400 tokens:
prose, bullet lists, code blocks, tool calls with their results, and a little Chinese.
All filler text is written for this benchmark from templates and small vocabularies, in
whole sentences a CPU OCR engine can read.

Into known turns it plants facts of every kind (a person's name, a number, a date, an
order or ticket id, a commit hash, a code identifier, an amount, a street address, an
e-mail address, a Chinese name), each with a question whose answer is exactly that
string. A planted answer occurs in its own turn and nowhere else in the conversation
(checked after case, whitespace and dash folding, see :func:`normalise`), so finding the
string anywhere means the evidence turn was recovered. Facts are planted at even steps
of the conversation's tokens, so a budget that keeps the newest x% of the tokens keeps
about x% of the evidence.

Example:
    >>> conversation = generate(101, tokens=24_000)
    >>> len(conversation.messages), len(conversation.facts)
    (..., 40)
    >>> fact = conversation.facts[0]
    >>> fact.answer in conversation.messages[fact.turn]["content"]
    True
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optical_memory.tokens import count_tokens

__all__ = ["FACT_KINDS", "Conversation", "PlantedFact", "generate", "message_text", "normalise"]

FACT_KINDS = (
    "person",
    "number",
    "date",
    "order_id",
    "hash",
    "code",
    "amount",
    "address",
    "email",
    "cjk_name",
)

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212\u30fc\uff0d"), "-")


def normalise(text: str) -> str:
    """The light normalisation answers are matched under: Unicode NFKC (full-width forms to
    ASCII), case folded, every dash-like character as ``-``, all whitespace removed (OCR of
    English drops and adds spaces; lines wrap anywhere)."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DASHES)
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class PlantedFact:
    """One planted fact: its kind, the message index holding it, the exact answer string
    and the question it answers."""

    kind: str
    turn: int
    answer: str
    question: str


@dataclass(frozen=True)
class Conversation:
    """A generated conversation: OpenAI-style message dicts (each with a stable ``id``) and
    the facts planted in them."""

    seed: int
    messages: list[dict[str, Any]]
    facts: list[PlantedFact]


def message_text(message: Mapping[str, Any]) -> str:
    """A message's content plus its tool calls' names and arguments."""
    parts = [str(message.get("content") or "")]
    for call in message.get("tool_calls") or ():
        parts.append(f"{call['function']['name']}({call['function']['arguments']})")
    return "\n".join(parts)


# --- vocabularies ---------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Names planted as facts, and names the filler uses: disjoint, so a planted name is unique.
_PLANT_FIRST = _words(
    "Amara Ines Tobias Leonie Rafael Mirela Joaquin Sunniva Kwame Ottilie Dariusz Farida "
    "Casimir Yolanda Thaddeus Marisol Evander Ingrid Lorcan Beatrix Soren Philippa Anselm "
    "Zuzana Emeka Rosalind Ignatius Nadira Florian Cressida"
)
_PLANT_LAST = _words(
    "Okafor Valdivia Lindqvist Brennan Castellanos Haverford Nakashima Oyelaran Pemberton "
    "Wojcik Albrecht Szabo Montgomery Ferreira Kowalczyk Drummond Esterhazy Thornbury "
    "Achterberg Villanueva Rasmussen Quintero Galloway Moreau Lindgren Abernathy Petrakis "
    "Holloway Okonkwo Fairweather"
)
_FILLER_NAMES = _words("Sam Priya Marco Lena Tom Aisha Ben Chloe Dan Yuki Omar Julia")
_CJK_SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗"
_CJK_GIVEN = "丽华建国志明秀英晓燕海涛文静俊杰雪梅家豪婉婷宇轩子涵思远佳怡"
_STREETS = _words(
    "Larkspur Sorrel Wexford Birchmont Halloran Quarry Juniper Ashgrove Tamarind Coldharbour "
    "Fenwick Marigold Osprey Kestrel Linden Bramble Harrowgate Millbrook"
)
_STREET_KINDS = ("Lane", "Road", "Street", "Avenue", "Close", "Crescent", "Way", "Terrace")
_DOMAINS = ("northwind-labs.com", "hollowpine.io", "quarrytech.net", "bluefern.org", "acme-rail.eu")
_MONTHS = _words(
    "January February March April May June July August September October November December"
)
_ID_PREFIXES = ("ORD", "INV", "TKT", "PO", "RMA", "CASE", "BK")
_VERBS = _words("normalize compute resolve merge rebuild collect validate flush reconcile parse")
_NOUNS = _words("invoice retry ledger shipment cohort quota tenant payload webhook cursor")
_TAILS = _words("rows budget window batch deltas entries offsets limits snapshot map")

_VOCAB: dict[str, tuple[str, ...]] = {
    "name": tuple(_FILLER_NAMES),
    "lib": ("pandas", "requests", "SQLAlchemy", "FastAPI", "pydantic", "NumPy", "pytest"),
    "err": ("KeyError", "TypeError", "ValueError", "TimeoutError", "AttributeError"),
    "file": ("loader.py", "models.py", "views.py", "tasks.py", "utils.py", "client.py"),
    "table": ("orders", "customers", "events", "payments", "sessions", "invoices"),
    "column": ("created_at", "customer_id", "status", "region", "updated_at", "email"),
    "city": ("Lisbon", "Porto", "Kyoto", "Osaka", "Vienna", "Prague", "Seville", "Bergen"),
    "sight": ("the old town", "the harbour", "a hill-top castle", "the market hall", "a museum"),
    "room": ("kitchen", "bathroom", "hallway", "spare bedroom", "living room"),
    "material": ("oak flooring", "ceramic tiles", "plasterboard", "pine shelving", "slate"),
    "dish": ("a lentil soup", "a mushroom risotto", "a tray of roast vegetables", "fish tacos"),
    "ingredient": ("garlic", "smoked paprika", "lemon zest", "fresh thyme", "miso", "leeks"),
    "service": ("the API", "the worker", "the web app", "the scheduler", "the billing job"),
    "tool": ("Docker", "systemd", "nginx", "GitHub Actions", "Terraform", "cron"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "small": ("two", "three", "four", "five", "six"),
    "num": ("2", "3", "4", "5", "8", "10", "12", "15", "20", "30"),
    "feeling": ("a bit stuck", "curious", "short on time", "fairly confident", "unsure"),
    "team": ("the platform team", "the data team", "support", "the design group", "finance"),
    "goal": ("cut the bill", "ship the release", "save for a holiday", "clear the backlog"),
}

# --- topics: sentences of user and assistant turns --------------------------------------------

_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "python": {
        "user": (
            "I'm getting a {err} in {file} when the loader reads an empty batch.",
            "The script worked yesterday, but after upgrading {lib} it fails on start.",
            "Could you explain why this function is so slow on large inputs?",
            "I tried adding a print before the loop and the list is already empty there.",
            "My colleague {name} thinks we should rewrite the whole module, but I'd rather not.",
            "Is there a cleaner way to write this without three nested loops?",
            "The tests pass locally and fail in CI, which is the worst kind of bug.",
            "Here is the part of {file} that I suspect, stripped down a little.",
            "I would like to keep the public interface the same if at all possible.",
            "Do you think type hints would have caught this earlier?",
            "The error only shows up when two requests arrive at the same moment.",
            "We pinned {lib} last spring and nobody has touched the version since.",
            "Memory use climbs slowly for hours and then the worker gets killed.",
            "I'm not sure whether the bug is in our code or in {lib} itself.",
        ),
        "assistant": (
            "The traceback points at the place where the value is used, not where it went wrong.",
            "A {err} at that line usually means the dictionary was built from a partial response.",
            "Let's narrow it down before changing anything: log the input size first.",
            "With {lib}, the default changed between releases, so the old code silently relied "
            "on behaviour that is gone now.",
            "The loop itself is fine; the cost is in the repeated lookups inside it.",
            "Moving the lookup out of the loop turns a quadratic pass into a linear one.",
            "If CI runs on a different Python version, check the ordering of the test files.",
            "I would keep the interface and change only the internals, then add one test that "
            "pins the old behaviour.",
            "Type hints would not have caught it, but a small property test would have.",
            "You can keep the function signature and return early when the batch is empty.",
            "It is worth reading the changelog of {lib}; the note about defaults is short.",
            "A race between two requests usually means some shared state is not protected.",
            "Slowly growing memory often comes from a cache without a size limit.",
            "Try to reproduce it with the smallest input that still fails, then bisect.",
            "A failing test that passes alone but fails in the suite points to shared fixtures.",
        ),
    },
    "sql": {
        "user": (
            "The report query on the {table} table takes almost a minute now.",
            "We added an index on {column} but the planner still does a sequential scan.",
            "Should I partition {table} by month, or is that overkill for our size?",
            "The dashboard times out every {weekday} morning when the weekly job runs.",
            "Here is the query plan, I can't make sense of the nested loop part.",
            "{name} suggested a materialized view, what do you think?",
            "We are on Postgres, and the table has grown a lot since spring.",
            "Vacuum seems to run for hours on {table} and I don't know if that's normal.",
            "The same query is fast in staging and slow in production.",
            "I'd like to archive old rows without locking the table for long.",
        ),
        "assistant": (
            "The planner skips the index when it expects to read most of the table anyway.",
            "An index on {column} helps only if the filter is selective enough.",
            "Run ANALYZE first; stale statistics are the most common cause of a bad plan.",
            "Partitioning pays off when queries touch one partition; otherwise it adds work.",
            "A materialized view is a good fit if the report can be a few minutes stale.",
            "The nested loop is cheap per row, but it runs once for every row of {table}.",
            "Try a composite index on {column} and the join key, in that order.",
            "Check whether the weekly job holds a lock on {table} while it runs.",
            "I would measure with EXPLAIN ANALYZE before and after each change.",
            "Staging is usually fast because its tables are small enough to sit in memory.",
            "Archive in small batches, each in its own transaction, to keep locks short.",
            "Long vacuums on a busy table often mean autovacuum settings are too gentle.",
        ),
    },
    "trip": {
        "user": (
            "We're planning {small} days in {city} and then a train to {city2}.",
            "My partner wants to see {sight}, and I mostly want to eat well.",
            "Is it worth renting a car there, or is public transport enough?",
            "We land late on {weekday}, so the first evening should be quiet.",
            "What would you skip if we only had one full day?",
            "{name} went last year and said the trains were often late.",
            "I'd like a rough plan for each day, nothing too packed.",
            "We're travelling with a toddler, so long museum days are out.",
            "Is it usually rainy there at that time of year?",
            "We'd love one really good dinner, somewhere locals actually go.",
        ),
        "assistant": (
            "For a first visit, {city} rewards slow walking more than a long list of sights.",
            "I would spend the first morning around {sight} before the crowds arrive.",
            "Public transport is enough in the centre; a car only helps for day trips.",
            "Book the train a few days ahead; the fares rise close to the date.",
            "On the quiet evening, a short walk and an early dinner near the hotel works well.",
            "If you have one full day, pick one neighbourhood and stay in it.",
            "Markets are busiest before noon, and many close early on {weekday}.",
            "Leave one afternoon unplanned; it is usually the part people remember.",
            "With a toddler, parks and the waterfront work better than galleries.",
            "Rain comes in short showers, so a light jacket is enough most days.",
            "For the special dinner, book a table for early evening; late slots fill first.",
            "The train to {city2} is scenic, so a window seat on the left is worth asking for.",
        ),
    },
    "renovation": {
        "user": (
            "We're finally redoing the {room}, and the budget is tighter than I hoped.",
            "The builder recommends {material}, but I've read mixed reviews.",
            "How long should the floor dry before we put the cabinets in?",
            "There is a damp patch behind the old units that nobody mentioned.",
            "{name} from next door did the same job and it took twice as long as planned.",
            "Should we do the electrics first or the plastering?",
            "The old window frames are rotten at the bottom corners.",
            "I'd like more light in the {room} without moving any walls.",
            "The radiator is in exactly the place where we want the sofa.",
        ),
        "assistant": (
            "Electrics and plumbing come first, then plaster, then the floor, then the units.",
            "{material} is a sound choice if the room stays dry; it dislikes standing water.",
            "A damp patch needs a cause before it needs a fix; check the pipe joints first.",
            "Ask the builder for a written schedule with a buffer of a week.",
            "Most screeds want several days per centimetre before anything heavy goes on them.",
            "Keep a small contingency for the surprises behind old walls.",
            "Photograph the walls before they are closed up; it helps with later repairs.",
            "Rot at the corners can often be cut out and spliced rather than replacing the frame.",
            "Pale walls and a mirror opposite the window add more light than people expect.",
            "Moving a radiator is a modest plumbing job if the floor is already up.",
        ),
    },
    "budget": {
        "user": (
            "I want to {goal}, and our spending feels all over the place.",
            "We spend more on eating out than on groceries, which surprised me.",
            "Is a fifty-thirty-twenty split realistic with rent where it is?",
            "Should I pay off the card first or build a buffer?",
            "My bank app groups things oddly, so the categories are a mess.",
            "Subscriptions keep creeping up and I've lost track of them.",
            "My partner and I have separate accounts and it makes planning awkward.",
        ),
        "assistant": (
            "Start by tracking one month as it is, without trying to change anything yet.",
            "A small buffer first, then the card, keeps one bad week from undoing the plan.",
            "Fixed costs are hard to move quickly; the flexible ones respond faster.",
            "Group spending into a few broad categories you actually recognise.",
            "Automate the saving on payday so it happens before the spending does.",
            "Review it together once a month, briefly, rather than arguing about every item.",
            "List every subscription once and cancel the ones nobody opened last month.",
            "A shared account for joint costs, fed by both, keeps separate accounts simple.",
            "The split is a guide, not a rule; high rent just moves the other shares.",
        ),
    },
    "devops": {
        "user": (
            "The deploy script for {service} keeps failing at the health check.",
            "We moved from {tool} to {tool2}, and the logs went quiet.",
            "Can you help me write a small script that rotates the old release folders?",
            "The container restarts every few minutes and I can't see why.",
            "{name} says the disk on the build machine fills up every night.",
            "Certificates expired last month and nobody got a warning.",
            "Builds take twenty minutes and most of it is installing dependencies.",
        ),
        "assistant": (
            "A failing health check often means the app listens on a different port than expected.",
            "Check the exit code of the container first; it tells you more than the restart count.",
            "When logs go quiet after a move, the process usually writes to a file nobody reads.",
            "Keep the last few releases and delete the rest, oldest first.",
            "Set a memory limit and watch whether the restarts line up with it.",
            "Add a timeout to the health check; the default may be too short at startup.",
            "Cache the dependency layer so a build only reinstalls when the lock file changes.",
            "Put certificate expiry on the same alert channel as the uptime checks.",
            "A nightly job that cleans old build artefacts keeps the disk from filling.",
        ),
    },
    "cooking": {
        "user": (
            "I'm cooking {dish} for {small} people and want it to feel special.",
            "Can I make it a day ahead, or does it lose something?",
            "I only have {ingredient} and {ingredient2} in the cupboard besides the basics.",
            "One of the guests is vegetarian, so I'd like the main to work for everyone.",
            "Last time the sauce split and I never worked out why.",
            "What would you serve for dessert that doesn't need the oven?",
        ),
        "assistant": (
            "{dish} improves overnight; the flavours settle and it reheats well.",
            "A little {ingredient} at the end lifts it more than adding it early.",
            "Season in layers and taste at each step rather than all at the end.",
            "Keep the garnish separate until serving so it stays bright.",
            "A simple salad and good bread make the rest of the table easy.",
            "A sauce splits when it gets too hot too fast; keep the heat low and whisk.",
            "Poached pears or a lemon posset both work without an oven.",
            "Make the vegetarian dish the main and serve any meat as a side.",
        ),
    },
    "team": {
        "user": (
            "Our sprint planning keeps running over, and half the tickets slip anyway.",
            "{team} and {team2} disagree about who owns the release checklist.",
            "How do I push back on a deadline without sounding negative?",
            "I'm {feeling} about the next quarter's plan.",
            "{name} is new and I want the onboarding to be less chaotic than mine was.",
            "Our retrospectives have turned into a list of complaints.",
            "Two senior people keep talking over the rest of the team in meetings.",
        ),
        "assistant": (
            "Plan less than you think you can do; slipping tickets are a planning signal.",
            "Ownership disputes settle faster when one person writes the checklist down.",
            "Offer a trade: a later date, or a smaller scope by the same date.",
            "A short written onboarding list beats a long meeting on the first day.",
            "Pair the new person with one buddy for the first two weeks.",
            "Keep the plan visible and revisit it every two weeks.",
            "End each retrospective with one change to try, not ten to discuss.",
            "A round where everyone speaks once before open discussion evens things out.",
        ),
    },
    "writing": {
        "user": (
            "Can you help me write a polite e-mail declining a meeting?",
            "The draft sounds too stiff; I'd like it warmer but still short.",
            "I need to tell {team} that the launch moves by a week.",
            "Could you tighten this paragraph? It repeats itself.",
            "I have to write a reference for {name} and I'm not sure how formal to be.",
            "The announcement should not sound like an apology.",
        ),
        "assistant": (
            "Lead with the decision, then the reason, then what happens next.",
            "Shorter sentences make a message sound more confident, not less polite.",
            "Here is a warmer version that keeps the same length.",
            "I removed the repeated clause and moved the request to the end.",
            "One clear ask per e-mail gets a faster answer.",
            "A reference works best with two concrete examples rather than many adjectives.",
            "State the new date plainly and say what it buys the customer.",
        ),
    },
    "chinese": {
        "user": (
            "I'm learning Chinese and want to practise a few everyday sentences.",
            "How would I say that I'm running late, in a natural way?",
            "Could you check my sentence: 我明天想去图书馆看书。",
            "What is the difference between 了 and 过 in simple terms?",
            "My tutor {name} says my tones are fine but my word order is not.",
            "How do I order a coffee politely: 请给我一杯咖啡，可以吗？",
        ),
        "assistant": (
            "That sentence is correct and sounds natural: 我明天想去图书馆看书。",
            "A natural way to say it is: 不好意思，我要晚到十分钟。",
            "了 marks that something happened or changed; 过 says you have had the experience.",
            "Time words usually come early: 我们明天下午见面，而不是我们见面明天下午。",
            "For practice, try: 这家饭馆的菜很好吃，但是有点儿贵。",
            "你说得很好！只要多练习，语序就会越来越自然。",
            "Reading short dialogues aloud helps with both tones and word order.",
            "In a café, 我要一杯拿铁，谢谢 is perfectly polite and more common.",
        ),
    },
}

# Sentences that fit any topic, mixed into both roles.
_GENERIC: dict[str, tuple[str, ...]] = {
    "user": (
        "I've been going back and forth on this for a while.",
        "Sorry if this is a basic question.",
        "I'd rather keep it simple if that's possible.",
        "We don't have much time before the end of the month.",
        "Does that change anything in what you said earlier?",
        "I'll try it this evening and report back.",
        "I'm {feeling} about it, to be honest.",
    ),
    "assistant": (
        "One change at a time keeps it easy to see which one helped.",
        "It's worth writing down what you tried, even the things that did not work.",
        "There is no single right answer here; it depends on what you value most.",
        "If in doubt, start with the cheapest step that gives you information.",
        "Most of the benefit comes from the first few changes.",
        "None of this is urgent, so you can pace it over a couple of weeks.",
        "That's a common situation, and it usually has a simple cause.",
    ),
}

_OPENERS = (
    "Good question.",
    "Here is how I would approach it.",
    "Thanks, that helps.",
    "Short answer: yes, with one caveat.",
    "Let's take it step by step.",
    "That makes sense.",
    "",
)
_CLOSERS = (
    "Let me know how it goes.",
    "Happy to go through the next step when you're ready.",
    "If anything is unclear, paste what you see and we'll look again.",
    "",
)
_USER_SHORT = (
    "Thanks, that worked.",
    "Makes sense, thank you.",
    "Okay, trying that now.",
    "Great, that's clearer.",
    "Perfect, one more question then.",
    "Hmm, not quite, let me check again.",
)

_CODE: dict[str, tuple[str, ...]] = {
    "python": (
        "```python\ndef load_batch(rows):\n    if not rows:\n        return []\n"
        "    index = {row['id']: row for row in rows}\n"
        "    return [index[key] for key in sorted(index)]\n```",
        "```python\nimport time\n\ndef retry(call, attempts=3, delay=0.5):\n"
        "    for attempt in range(attempts):\n        try:\n            return call()\n"
        "        except TimeoutError:\n            time.sleep(delay * (attempt + 1))\n"
        "    raise RuntimeError('gave up after retries')\n```",
        "```python\nfrom collections import Counter\n\ncounts = Counter(word.lower() "
        "for word in text.split())\nprint(counts.most_common(5))\n```",
    ),
    "sql": (
        "```sql\nCREATE INDEX CONCURRENTLY idx_orders_status_created\n"
        "    ON orders (status, created_at);\nANALYZE orders;\n```",
        "```sql\nSELECT region, count(*) AS total\nFROM customers\n"
        "WHERE created_at >= now() - interval '30 days'\nGROUP BY region\n"
        "ORDER BY total DESC;\n```",
    ),
    "devops": (
        "```bash\n#!/usr/bin/env bash\nset -euo pipefail\ncd /srv/app/releases\n"
        "ls -1t | tail -n +6 | xargs -r rm -rf\n```",
        "```bash\ndocker inspect --format '{{.State.ExitCode}}' web\n"
        "journalctl -u web.service --since '1 hour ago'\n```",
    ),
}

_BULLETS: dict[str, tuple[str, ...]] = {
    "python": ("log the input size", "pin the dependency", "add a regression test"),
    "sql": ("refresh statistics", "check the plan", "add the composite index"),
    "trip": ("book trains early", "keep one afternoon free", "carry a light jacket"),
    "renovation": ("fix the damp first", "get a written schedule", "keep a contingency"),
    "budget": ("track one month", "automate savings", "review monthly"),
    "devops": ("check the exit code", "set a memory limit", "rotate old releases"),
    "cooking": ("season in layers", "make it ahead", "garnish at the end"),
    "team": ("plan less", "write ownership down", "pair new people"),
    "writing": ("decision first", "one ask per e-mail", "short sentences"),
    "chinese": ("read aloud daily", "learn time words early", "practise with a partner"),
}

# --- planted facts: values and the sentences that carry them -----------------------------------

# (topic, role, statement with {v}, question); role "tool" plants the value in a tool result.
_PLANTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "person": (
        (
            "renovation",
            "user",
            "The electrician who will rewire the {room} is {v}; she can "
            "start after the plasterers leave.",
            "Who is the electrician rewiring the room?",
        ),
        (
            "team",
            "user",
            "Our new product manager is {v}, and she takes over the billing roadmap next month.",
            "What is the new product manager's name?",
        ),
        (
            "trip",
            "user",
            "The guide we booked for the walking tour is called {v}.",
            "What is the name of the walking-tour guide?",
        ),
        (
            "python",
            "user",
            "The original author of {file} was {v}, who left last year.",
            "Who originally wrote the module?",
        ),
        (
            "writing",
            "user",
            "The e-mail goes to {v}, who chairs the steering group.",
            "Who chairs the steering group?",
        ),
        (
            "budget",
            "user",
            "Our accountant is {v}; she wants the receipts by the end of the quarter.",
            "What is the accountant's name?",
        ),
    ),
    "number": (
        (
            "sql",
            "user",
            "The {table} table has {v} rows as of this morning.",
            "How many rows does the table have?",
        ),
        (
            "devops",
            "user",
            "The rate limit on {service} is {v} requests per hour.",
            "What is the rate limit in requests per hour?",
        ),
        (
            "budget",
            "user",
            "Our loyalty card shows {v} points, which I never use.",
            "How many loyalty points are on the card?",
        ),
        (
            "trip",
            "user",
            "The hiking route we want is {v} metres of climbing in total.",
            "How many metres of climbing is the hiking route?",
        ),
        (
            "team",
            "user",
            "The backlog has {v} open story points after the cleanup.",
            "How many open story points are in the backlog?",
        ),
        (
            "cooking",
            "user",
            "Scaled up for the party, the recipe needs {v} grams of flour in total.",
            "How many grams of flour does the scaled-up recipe need?",
        ),
    ),
    "date": (
        (
            "trip",
            "user",
            "Our flight leaves on {v}, early in the morning.",
            "When does the flight leave?",
        ),
        (
            "team",
            "user",
            "The release freeze starts on {v}, so we have little time.",
            "When does the release freeze start?",
        ),
        (
            "renovation",
            "user",
            "The tiles are due to arrive on {v}.",
            "When are the tiles due to arrive?",
        ),
        (
            "budget",
            "user",
            "The card's promotional rate ends on {v}.",
            "When does the promotional rate end?",
        ),
        (
            "writing",
            "user",
            "The steering meeting I'm declining is on {v}.",
            "When is the steering meeting?",
        ),
    ),
    "order_id": (
        ("renovation", "tool", "", "What is the id of the order for the kitchen materials?"),
        (
            "trip",
            "user",
            "The hotel booking reference is {v}, in case we need to change it.",
            "What is the hotel booking reference?",
        ),
        (
            "devops",
            "user",
            "I opened a support ticket for the outage: {v}.",
            "What is the support ticket number for the outage?",
        ),
        (
            "budget",
            "user",
            "The refund request for the faulty heater is {v}.",
            "What is the refund request id for the heater?",
        ),
    ),
    "hash": (
        (
            "python",
            "user",
            "The last good build was commit {v}; everything after it fails.",
            "Which commit was the last good build?",
        ),
        (
            "devops",
            "assistant",
            "The deploy that broke the health check is commit {v}; "
            "rolling back to the one before it is the safest first step.",
            "Which commit broke the health check?",
        ),
        (
            "sql",
            "user",
            "The migration that added the index came in with commit {v}.",
            "Which commit added the index migration?",
        ),
    ),
    "code": (
        (
            "python",
            "assistant",
            "",
            "What is the name of the helper function suggested for the batch code?",
        ),
        (
            "sql",
            "user",
            "The slow part is in our `{v}` function, which the nightly report calls.",
            "Which function does the nightly report call?",
        ),
        (
            "devops",
            "user",
            "The environment variable that controls it is {v}, set in the unit file.",
            "Which environment variable controls the setting?",
        ),
    ),
    "amount": (
        (
            "budget",
            "user",
            "Last month we spent {v} on eating out alone.",
            "How much was spent on eating out last month?",
        ),
        (
            "renovation",
            "user",
            "The builder's quote for the {room} came in at {v}.",
            "What was the builder's quote?",
        ),
        ("trip", "tool", "", "How much does the train ticket cost?"),
        (
            "team",
            "user",
            "The approved budget for the offsite is {v}.",
            "What is the approved budget for the offsite?",
        ),
    ),
    "address": (
        (
            "renovation",
            "user",
            "The showroom is at {v}, near the station.",
            "What is the showroom's street address?",
        ),
        (
            "trip",
            "user",
            "Our apartment is at {v}, on the third floor.",
            "What is the apartment's street address?",
        ),
        (
            "cooking",
            "user",
            "The dinner is at my sister's place, {v}.",
            "At what street address is the dinner?",
        ),
    ),
    "email": (
        (
            "writing",
            "user",
            "Please address it to {v} and copy me.",
            "Which e-mail address should the message go to?",
        ),
        (
            "devops",
            "user",
            "Alerts should go to {v} from now on.",
            "Which e-mail address should alerts go to?",
        ),
        (
            "team",
            "user",
            "The new contractor's e-mail is {v}.",
            "What is the new contractor's e-mail address?",
        ),
    ),
    "cjk_name": (
        (
            "chinese",
            "user",
            "我的中文老师叫{v}，她每周二给我上课。",
            "What is the name of the user's Chinese teacher?",
        ),
        ("chinese", "user", "明天来接我们的司机是{v}先生。", "Who is the driver picking them up?"),
    ),
}


class _Slots(dict[str, str]):
    """Fills templates' slots for one exchange: ``{city}`` is one city throughout the
    exchange, ``{city2}`` another one."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        base = key.rstrip("0123456789")
        taken = {value for name, value in self.items() if name.rstrip("0123456789") == base}
        choices = [value for value in _VOCAB[base] if value not in taken] or list(_VOCAB[base])
        self[key] = value = self.rng.choice(choices)
        return value


def _value(kind: str, rng: random.Random) -> str:
    if kind == "person":
        return f"{rng.choice(_PLANT_FIRST)} {rng.choice(_PLANT_LAST)}"
    if kind == "number":
        if rng.random() < 0.7:
            return f"{rng.randint(1_200, 98_000):,}"
        return str(rng.randint(1_200, 9_800))
    if kind == "date":
        year, month, day = rng.choice((2024, 2025, 2026)), rng.randint(1, 12), rng.randint(1, 28)
        style = rng.randrange(3)
        if style == 0:
            return f"{year}-{month:02d}-{day:02d}"
        if style == 1:
            return f"{day} {_MONTHS[month - 1]} {year}"
        return f"{_MONTHS[month - 1]} {day}, {year}"
    if kind == "order_id":
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        return f"{rng.choice(_ID_PREFIXES)}-{rng.randint(10_000, 999_999)}-{letters}"
    if kind == "hash":
        return f"{rng.getrandbits(40):010x}"
    if kind == "code":
        verb, noun, tail = rng.choice(_VERBS), rng.choice(_NOUNS), rng.choice(_TAILS)
        if rng.random() < 0.5:
            return f"{verb}_{noun}_{tail}"
        return f"{verb}{noun.title()}{tail.title()}"
    if kind == "amount":
        symbol = rng.choice(("$", "€", "£"))
        return f"{symbol}{rng.randint(120, 9_800):,}.{rng.randint(0, 99):02d}"
    if kind == "address":
        return f"{rng.randint(2, 240)} {rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"
    if kind == "email":
        first, last = rng.choice(_PLANT_FIRST).lower(), rng.choice(_PLANT_LAST).lower()
        return f"{first}.{last}@{rng.choice(_DOMAINS)}"
    if kind == "cjk_name":
        return rng.choice(_CJK_SURNAMES) + "".join(rng.sample(_CJK_GIVEN, 2))
    raise ValueError(f"unknown fact kind {kind!r}")


# --- turns -----------------------------------------------------------------------------------


class _Builder:
    """Appends messages with stable ids and tool-call ids; holds the current exchange's
    slot values, so a user turn and its answer talk about the same city or library."""

    def __init__(self, seed: int, rng: random.Random) -> None:
        self.seed = seed
        self.rng = rng
        self.messages: list[dict[str, Any]] = []
        self.tokens = 0
        self.slots = _Slots(rng)

    def exchange(self) -> None:
        """Start a new exchange (fresh slot values)."""
        self.slots = _Slots(self.rng)

    def fill(self, template: str) -> str:
        return template.format_map(self.slots)

    def add(self, message: dict[str, Any]) -> int:
        index = len(self.messages)
        message = {"id": f"s{self.seed}-m{index:05d}", **message}
        self.messages.append(message)
        self.tokens += count_tokens(message_text(message))
        return index

    def user(self, text: str) -> int:
        return self.add({"role": "user", "content": text})

    def assistant(self, text: str) -> int:
        return self.add({"role": "assistant", "content": text})

    def tool_call(self, name: str, arguments: dict[str, Any], result: dict[str, Any]) -> int:
        call_id = f"call_{self.seed}_{len(self.messages):05d}"
        arguments_json = json.dumps(arguments, ensure_ascii=False)
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments_json},
        }
        self.add({"role": "assistant", "content": "", "tool_calls": [call]})
        content = json.dumps(result, indent=1, ensure_ascii=False)
        return self.add({"role": "tool", "tool_call_id": call_id, "content": content})

    def sentences(self, topic: str, role: str, low: int, high: int) -> list[str]:
        """``low`` to ``high`` different sentences of the topic's (and sometimes the generic)
        bank for ``role``, slots filled."""
        bank = list(_TOPICS[topic][role])
        if self.rng.random() < 0.5:
            bank += _GENERIC[role]
        count = min(self.rng.randint(low, high), len(bank))
        return [self.fill(s) for s in self.rng.sample(bank, count)]


def _user_turn(b: _Builder, topic: str) -> str:
    rng = b.rng
    if rng.random() < 0.15:
        return " ".join([rng.choice(_USER_SHORT), *b.sentences(topic, "user", 1, 3)])
    text = " ".join(b.sentences(topic, "user", 2, 7))
    if topic in _CODE and rng.random() < 0.25:
        text += "\n\n" + rng.choice(_CODE[topic])
    return text


def _assistant_turn(b: _Builder, topic: str) -> str:
    rng = b.rng
    sentences = b.sentences(topic, "assistant", 4, 18)
    blocks = [rng.choice(_OPENERS)]
    while sentences:
        size = rng.randint(2, 4)
        blocks.append(" ".join(sentences[:size]))
        sentences = sentences[size:]
    if rng.random() < 0.35:
        items = list(_BULLETS[topic])
        rng.shuffle(items)
        blocks.insert(rng.randint(1, len(blocks)), "\n".join(f"- {i.capitalize()}." for i in items))
    if topic in _CODE and rng.random() < 0.45:
        blocks.insert(rng.randint(1, len(blocks)), rng.choice(_CODE[topic]))
    blocks.append(rng.choice(_CLOSERS))
    return "\n\n".join(block for block in blocks if block)


def _tool_exchange(b: _Builder, topic: str, value: str | None = None, kind: str = "") -> int:
    """A user request, an assistant tool call, its result, and a summary; returns the index
    of the tool result (where ``value`` is planted, if given)."""
    rng = b.rng
    if kind == "amount" or (value is None and topic == "trip"):
        b.user(b.fill("Can you check the train fare from {city} to {city2} for next week?"))
        fare = value or f"{rng.choice('$€')}{rng.randint(20, 90)}"
        index = b.tool_call(
            "search_trains",
            {"from": b.fill("{city}"), "to": b.fill("{city2}"), "class": "standard"},
            {"departures": ["08:05", "11:40", "16:15"], "fare": fare, "changes": 0},
        )
        b.assistant(
            "There are three direct departures; the late-morning one leaves time for "
            "breakfast. I'd book it soon, since fares rise closer to the date."
        )
        return index
    if kind == "order_id" or (value is None and topic == "renovation"):
        b.user("Could you look up the order for the kitchen materials? I think it shipped.")
        index = b.tool_call(
            "lookup_order",
            {"customer": b.fill("{name}"), "query": "kitchen materials"},
            {"order_id": value or "pending", "status": "shipped", "items": 4, "carrier": "DPD"},
        )
        b.assistant(
            "It has shipped with four items, and the carrier usually delivers within "
            "two working days. I can draft a note to the builder if that helps."
        )
        return index
    if topic == "sql":
        b.user(b.fill("Can you run the row count on the {table} table for the last week?"))
        query = b.fill("SELECT count(*) FROM {table} WHERE created_at > now() - interval '7 days'")
        index = b.tool_call(
            "run_sql",
            {"query": query},
            {"rows": [[rng.randint(300, 900)]], "elapsed_ms": rng.randint(40, 400)},
        )
        b.assistant(
            "That is a few hundred rows, so the index is not the bottleneck here. "
            "The time goes into the join, as we suspected."
        )
        return index
    b.user(b.fill("What's the weather looking like in {city} this weekend?"))
    index = b.tool_call(
        "get_weather",
        {"city": b.fill("{city}"), "days": 3},
        {"forecast": ["sunny", "cloudy", "light rain"], "high_c": rng.randint(12, 28)},
    )
    b.assistant("Mostly fine, with some rain on the last day, so pack a light jacket.")
    return index


def _plant(b: _Builder, kind: str, template: tuple[str, str, str, str], value: str) -> int:
    topic, role, statement, _ = template
    if role == "tool":
        return _tool_exchange(b, topic, value, kind)
    if kind == "code" and role == "assistant":
        b.user(" ".join(b.sentences("python", "user", 2, 3)))
        code = (
            f"```python\ndef {value}(rows, limit=100):\n    seen = set()\n    kept = []\n"
            "    for row in rows[:limit]:\n        if row['id'] not in seen:\n"
            "            seen.add(row['id'])\n            kept.append(row)\n    return kept\n```"
        )
        return b.assistant(
            "I'd pull the de-duplication into a small helper, so the loader stays readable "
            f"and the helper is easy to test on its own:\n\n{code}\n\n"
            + " ".join(b.sentences("python", "assistant", 1, 3))
        )
    b.slots["v"] = value
    sentence = b.fill(statement)
    if role == "assistant":
        b.user(" ".join(b.sentences(topic, "user", 1, 3)))
        before = " ".join(b.sentences(topic, "assistant", 1, 3))
        after = " ".join(b.sentences(topic, "assistant", 1, 3))
        return b.assistant(f"{before} {sentence}\n\n{after}")
    before = b.sentences(topic, "user", 0, 2)
    after = b.sentences(topic, "user", 0, 2)
    index = b.user(" ".join([*before, sentence, *after]))
    b.assistant(_assistant_turn(b, topic))
    return index


def generate(
    seed: int,
    *,
    tokens: int | None = 24_000,
    turns: int | None = None,
    facts: int = 40,
) -> Conversation:
    """A conversation of about ``tokens`` cl100k tokens (or of ``turns`` messages, a
    few more at most, when given), with ``facts`` planted facts at even steps.

    Args:
        seed: The random seed; the same seed gives the same conversation.
        tokens: Stop once the messages' text holds this many tokens.
        turns: Stop once there are this many messages (overrides ``tokens``).
        facts: How many facts to plant, cycling through :data:`FACT_KINDS`.
    """
    if turns is None and tokens is None:
        raise ValueError("give tokens or turns")
    rng = random.Random(seed)
    b = _Builder(seed, rng)
    kinds = [FACT_KINDS[i % len(FACT_KINDS)] for i in range(facts)]
    rng.shuffle(kinds)
    unused: dict[str, list[tuple[str, str, str, str]]] = {kind: [] for kind in _PLANTS}
    planted: list[PlantedFact] = []
    values: set[str] = set()

    def progress() -> float:
        if turns is not None:
            return len(b.messages) / turns
        return b.tokens / tokens if tokens else 1.0

    topic = rng.choice(list(_TOPICS))
    while progress() < 1.0:
        b.exchange()
        if rng.random() < 0.25:
            topic = rng.choice(list(_TOPICS))
        if len(planted) < facts and progress() >= (len(planted) + 0.5) / facts:
            kind = kinds[len(planted)]
            if not unused[kind]:  # each question once, until every one is used
                unused[kind] = list(_PLANTS[kind])
                rng.shuffle(unused[kind])
            template = unused[kind].pop()
            value = _value(kind, rng)
            while normalise(value) in values or _seen(b.messages, value):
                value = _value(kind, rng)
            values.add(normalise(value))
            index = _plant(b, kind, template, value)
            planted.append(PlantedFact(kind, index, value, template[3]))
        elif rng.random() < 0.08:
            _tool_exchange(b, topic)
        else:
            b.user(_user_turn(b, topic))
            b.assistant(_assistant_turn(b, topic))
    _check_unique(b.messages, planted)
    return Conversation(seed=seed, messages=b.messages, facts=planted)


def _seen(messages: list[dict[str, Any]], value: str) -> bool:
    answer = normalise(value)
    return any(answer in normalise(message_text(m)) for m in messages[-400:])


def _check_unique(messages: list[dict[str, Any]], facts: list[PlantedFact]) -> None:
    """Each planted answer occurs in its own turn and in no other (normalised)."""
    texts = [normalise(message_text(m)) for m in messages]
    for fact in facts:
        answer = normalise(fact.answer)
        where = [i for i, text in enumerate(texts) if answer in text]
        if where != [fact.turn]:
            raise AssertionError(f"planted {fact.answer!r} found in turns {where}, not {fact.turn}")
