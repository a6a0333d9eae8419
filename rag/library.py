"""The knowledge bases as one principal may use them: every front door (API, MCP, web page) asks here.

Scoping happens before any store is opened: the KBs a request names are checked against what
its principal may read (:mod:`rag.accounts.permissions`), and only those KBs' stores are searched,
listed or changed; the audit log gets one row per action."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rag.accounts.audit import AuditLog
from rag.accounts.kbs import Kb, KbNotFound
from rag.accounts.permissions import Permissions
from rag.accounts.users import Principal
from rag.components import Components
from rag.index.store import DocumentRecord
from rag.knowledge_base import KnowledgeBase
from rag.qa.kb_search import KbRetriever
from rag.qa.pipeline import Event


class Library:
    """The knowledge bases of ``components``, scoped per principal."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.permissions = Permissions(components.database(), components.kbs())
        self.audit: AuditLog = components.audit()

    def readable(self, principal: Principal) -> list[Kb]:
        """The KBs ``principal`` may read."""
        return self.permissions.readable(principal)

    def writable(self, principal: Principal) -> list[Kb]:
        """The KBs ``principal`` may change (an editor's; every KB for an administrator)."""
        if principal.admin:
            return self.readable(principal)
        roles = self.permissions.users.roles(principal)
        return [kb for kb in self.readable(principal) if roles.get(kb.name) == "editor"]

    def resolve(self, principal: Principal, names: Sequence[str] | None = None) -> list[Kb]:
        """The KBs named (all readable ones when none is named); :class:`KbNotFound` for one it may not
        read, or when it may read none."""
        kbs = self.permissions.resolve(principal, names)
        if not kbs:
            raise KbNotFound(names[0] if names else "rag-zh")
        return kbs

    def searcher(self, principal: Principal, names: Sequence[str] | None = None) -> KbRetriever:
        """Search over the named readable KBs, refreshed (an upload a moment ago is found)."""
        searcher = self.components.searcher(self.resolve(principal, names))
        searcher.refresh()
        return searcher

    def documents(self, principal: Principal, names: Sequence[str] | None = None) -> list[tuple[str, DocumentRecord]]:
        """(KB, document) for every document of the named readable KBs."""
        return [(kb.name, record) for kb in self.resolve(principal, names) for record in self.base(kb).documents()]

    def editable(self, principal: Principal, name: str) -> KnowledgeBase:
        """The documents of KB ``name`` to change: :class:`KbNotFound` unless readable, :class:`Forbidden` unless editor."""
        return self.base(self.permissions.editable(principal, name))

    def base(self, kb: Kb) -> KnowledgeBase:
        """The documents of ``kb``, through its one set of components."""
        return KnowledgeBase(self.components.for_kb(kb))

    def record(self, principal: Principal, action: str, kbs: Sequence[str], detail: str = "", outcome: str = "ok") -> None:
        """One audit row for ``principal``'s action."""
        self.audit.record(principal.actor, action, kbs, detail, outcome)

    def audited_answer(self, principal: Principal, kbs: Sequence[str], question: str, events: Iterator[Event]) -> Iterator[Event]:
        """``events`` passed through; the audit row (answered, refused, error) written when the answer ends."""
        try:
            for event in events:
                if event.kind == "done" and event.answer is not None:
                    self.record(principal, "ask", kbs, question, "refused" if event.answer.refused else "answered")
                yield event
        except Exception:
            self.record(principal, "ask", kbs, question, "error")
            raise
