"""The 管理 tab's 用户, 授权 and API 密钥 screens: administrators list and add users, grant and revoke
roles on knowledge bases, and create (shown once) and revoke API keys.

Every handler goes through :class:`rag.accounts.admin.Administration`, the CLI's own code: it
checks the role again on every click and writes the audit row in the administrator's name. The
tab is shown to administrators only; a request from anyone else gets a notice, never a row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from rag.accounts.admin import Administration
from rag.accounts.kbs import KbNotFound
from rag.accounts.keys import UnknownKey
from rag.accounts.permissions import Forbidden
from rag.accounts.users import MIN_PASSWORD_CHARS, BadName, GrantKind, Principal, UnknownUser, UserExists, WeakPassword
from rag.errors import RagError
from rag.index.locations import redact

USER_HEADERS = ["用户", "管理员", "组", "授权", "登录方式", "创建时间"]
GRANT_HEADERS = ["知识库", "类型", "名称", "角色"]
KEY_HEADERS = ["编号", "用户", "名称", "开头", "创建时间", "撤销时间"]
KIND_CHOICES = [("用户", "user"), ("组", "group")]
ROLE_CHOICES = [("读者（提问、检索、查看）", "reader"), ("编辑（还可上传、删除）", "editor")]
KIND_NAMES = dict((value, label) for label, value in KIND_CHOICES)
ROLE_NAMES = {"reader": "读者", "editor": "编辑"}
NAME_WHAT = {"user": "用户名", "group": "组名", "key label": "密钥名称"}
NOT_ADMIN = "只有管理员可以管理用户、授权和 API 密钥。"


def admin_message(exc: RagError) -> str:
    """What went wrong with an administrator's change, in Chinese."""
    if isinstance(exc, Forbidden):
        return NOT_ADMIN
    if isinstance(exc, UnknownUser):
        return f"没有名为「{exc.name}」的用户，请先在「用户」页添加。"
    if isinstance(exc, UserExists):
        return f"用户「{exc.name}」已经存在。"
    if isinstance(exc, WeakPassword):
        return f"密码太短：至少需要 {MIN_PASSWORD_CHARS} 个字符。"
    if isinstance(exc, BadName):
        what = NAME_WHAT.get(exc.what, "名称")
        return f"「{exc.name}」不能作{what}：只能用 1-64 个英文字母、数字和 . _ @ -，并以字母或数字开头。"
    if isinstance(exc, KbNotFound):
        return f"没有名为「{exc.name}」的知识库。"
    if isinstance(exc, UnknownKey):
        return f"没有编号为 {exc.key_id} 的 API 密钥。"
    return f"操作没有完成：{redact(str(exc))}"


def split_groups(text: str) -> list[str]:
    """Group names typed as ``hr, finance`` (commas, Chinese commas or spaces between them)."""
    return [part for part in text.replace("，", ",").replace(" ", ",").split(",") if part]


class AccountScreens:
    """The handlers of the 用户, 授权 and API 密钥 screens; each takes the acting principal."""

    def __init__(self, admin: Administration) -> None:
        self.admin = admin

    def user_rows(self, principal: Principal) -> list[list[str]]:
        """The users table (none for a non-administrator)."""
        try:
            listed = self.admin.list_users(principal)
        except Forbidden:
            return []
        return [
            [
                one.user.name,
                "是" if one.user.admin else "",
                ", ".join(one.user.groups),
                ", ".join(f"{kb}:{ROLE_NAMES[role]}" for kb, role in one.grants.items()),
                "密码" if one.user.has_password else "仅 API 密钥",
                one.user.created_at,
            ]
            for one in listed
        ]

    def grant_rows(self, principal: Principal) -> list[list[str]]:
        """The grants table (none for a non-administrator)."""
        try:
            grants = self.admin.list_grants(principal)
        except Forbidden:
            return []
        return [[g.kb, KIND_NAMES[g.kind], g.principal, ROLE_NAMES[g.role]] for g in grants]

    def key_rows(self, principal: Principal) -> list[list[str]]:
        """The API keys table, never a key itself (none for a non-administrator)."""
        try:
            keys = self.admin.list_keys(principal)
        except Forbidden:
            return []
        return [[str(k.id), k.user, k.label, k.prefix + "…", k.created_at, k.revoked_at or ""] for k in keys]

    def key_choices(self, principal: Principal) -> Any:
        """The revoke dropdown: the keys that still work."""
        try:
            keys = self.admin.list_keys(principal)
        except Forbidden:
            keys = []
        choices = [(f"{k.id} · {k.label}（{k.user}）", str(k.id)) for k in keys if k.revoked_at is None]
        return gr.update(choices=choices, value=None)

    def kb_choices(self, principal: Principal) -> Any:
        """The grant screen's knowledge bases (every one, for an administrator)."""
        kbs = self.admin.registry.list() if principal.admin else []
        return gr.update(choices=[kb.name for kb in kbs], value=None)

    def load(self, principal: Principal) -> tuple[Any, ...]:
        """On page load: (users, grants, keys, grant KB choices, revoke choices); all empty for a non-administrator."""
        return (
            self.user_rows(principal),
            self.grant_rows(principal),
            self.key_rows(principal),
            self.kb_choices(principal),
            self.key_choices(principal),
        )

    def add_user(
        self, principal: Principal, name: str, groups: str, admin: bool, password: str
    ) -> tuple[str, str, list[list[str]]]:
        """添加用户: (status, password box, users table); the password box is emptied once the user exists."""
        name = (name or "").strip()
        if not name:
            return "请填写用户名。", password, self.user_rows(principal)
        try:
            user = self.admin.add_user(principal, name, split_groups(groups or ""), bool(admin), password or None)
        except RagError as exc:
            return f"❌ {admin_message(exc)}", password, self.user_rows(principal)
        how = "可以用密码登录" if user.has_password else "没有密码，只能用 API 密钥"
        role = "管理员" if user.admin else "用户"
        return f"✅ 已添加{role}「{user.name}」（{how}）。", "", self.user_rows(principal)

    def grant(self, principal: Principal, kb: str, kind: str, name: str, role: str) -> tuple[str, Any, Any]:
        """授权: (status, grants table, users table)."""
        name = (name or "").strip()
        if not kb or not name:
            return "请选择知识库，并填写用户名或组名。", self.grant_rows(principal), self.user_rows(principal)
        try:
            grant = self.admin.grant(principal, kb, grantee_kind(kind), name, role or "")
            status = f"✅ {KIND_NAMES[grant.kind]}「{grant.principal}」现在是知识库「{grant.kb}」的{ROLE_NAMES[grant.role]}。"
        except RagError as exc:
            status = f"❌ {admin_message(exc)}"
        return status, self.grant_rows(principal), self.user_rows(principal)

    def revoke(self, principal: Principal, kb: str, kind: str, name: str) -> tuple[str, Any, Any]:
        """撤销授权: (status, grants table, users table)."""
        name = (name or "").strip()
        if not kb or not name:
            return "请选择知识库，并填写用户名或组名。", self.grant_rows(principal), self.user_rows(principal)
        try:
            who = grantee_kind(kind)
            revoked = self.admin.revoke(principal, kb, who, name)
            done = "已撤销" if revoked else "本来就没有"
            status = f"{'✅' if revoked else 'ℹ️'} {KIND_NAMES[who]}「{name}」在知识库「{kb}」上的权限{done}。"
        except RagError as exc:
            status = f"❌ {admin_message(exc)}"
        return status, self.grant_rows(principal), self.user_rows(principal)

    def create_key(self, principal: Principal, user: str, label: str) -> tuple[str, str, Any, Any]:
        """创建密钥: (status, the key, shown this once, keys table, revoke choices)."""
        user = (user or "").strip()
        if not user:
            return "请填写密钥所属的用户。", "", self.key_rows(principal), self.key_choices(principal)
        try:
            key, secret = self.admin.create_key(principal, user, (label or "").strip() or None)
        except RagError as exc:
            return f"❌ {admin_message(exc)}", "", self.key_rows(principal), self.key_choices(principal)
        status = f"✅ 已为「{key.user}」创建密钥 {key.id}（{key.label}）。请现在复制保存：它只显示这一次，服务器只保存它的摘要。"
        return status, secret, self.key_rows(principal), self.key_choices(principal)

    def revoke_key(self, principal: Principal, key_id: str | None) -> tuple[str, str, Any, Any]:
        """撤销密钥: (status, the emptied key box, keys table, revoke choices)."""
        try:
            number = int(key_id or "")
        except ValueError:
            return "请先选择要撤销的密钥。", "", self.key_rows(principal), self.key_choices(principal)
        try:
            key = self.admin.revoke_key(principal, number)
            status = f"✅ 已撤销密钥 {key.id}（{key.label}，{key.user}），它从下一次请求起失效。"
        except RagError as exc:
            status = f"❌ {admin_message(exc)}"
        return status, "", self.key_rows(principal), self.key_choices(principal)


def grantee_kind(kind: str) -> GrantKind:
    """``user`` or ``group`` as the browser sent it (a client may send anything)."""
    if kind == "group":
        return "group"
    if kind == "user":
        return "user"
    raise RagError("请选择授权给用户还是组。")


def accounts_tabs(demo: gr.Blocks, screens: AccountScreens, principal_of: Callable[[gr.Request | None], Principal]) -> None:
    """The 用户, 授权 and API 密钥 sub-tabs, filled on page load (for administrators only)."""
    with gr.Tab("用户", id="admin-users"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                gr.Markdown("#### 添加用户")
                user_name = gr.Textbox(label="用户名", placeholder="alice", elem_id="rag-admin-user-name")
                user_groups = gr.Textbox(
                    label="组（可选，用逗号分隔）", placeholder="hr, finance", elem_id="rag-admin-user-groups"
                )
                user_admin = gr.Checkbox(label="管理员（可以管理一切）", elem_id="rag-admin-user-admin")
                user_password = gr.Textbox(
                    label=f"网页登录密码（至少 {MIN_PASSWORD_CHARS} 个字符；不填则只能用 API 密钥）",
                    type="password",
                    elem_id="rag-admin-user-password",
                )
                add_user = gr.Button("添加用户", variant="primary", elem_id="rag-admin-user-add")
                user_status = gr.Markdown(elem_id="rag-admin-user-status")
            with gr.Column(scale=2, min_width=400):
                users = gr.Dataframe(headers=USER_HEADERS, interactive=False, wrap=True, elem_id="rag-admin-users")
    with gr.Tab("授权", id="admin-grants"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                grant_kb = gr.Dropdown(label="知识库", choices=[], elem_id="rag-admin-grant-kb")
                grant_kind = gr.Radio(KIND_CHOICES, value="user", label="授权给", elem_id="rag-admin-grant-kind")
                grant_name = gr.Textbox(label="用户名或组名", placeholder="alice", elem_id="rag-admin-grant-name")
                grant_role = gr.Radio(ROLE_CHOICES, value="reader", label="角色", elem_id="rag-admin-grant-role")
                with gr.Row():
                    grant = gr.Button("授权", variant="primary", elem_id="rag-admin-grant")
                    revoke = gr.Button("撤销授权", variant="stop", elem_id="rag-admin-revoke")
                grant_status = gr.Markdown(elem_id="rag-admin-grant-status")
            with gr.Column(scale=2, min_width=400):
                grants = gr.Dataframe(headers=GRANT_HEADERS, interactive=False, wrap=True, elem_id="rag-admin-grants")
    with gr.Tab("API 密钥", id="admin-keys"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                key_user = gr.Textbox(label="密钥所属的用户", placeholder="alice", elem_id="rag-admin-key-user")
                key_label = gr.Textbox(label="名称（可选）", placeholder="report-bot", elem_id="rag-admin-key-label")
                create_key = gr.Button("创建密钥", variant="primary", elem_id="rag-admin-key-create")
                secret = gr.Textbox(
                    label="新密钥（只显示这一次）", interactive=False, buttons=["copy"], elem_id="rag-admin-key-secret"
                )
                gr.Markdown("#### 撤销密钥")
                key_choice = gr.Dropdown(label="选择要撤销的密钥", choices=[], elem_id="rag-admin-key-choice")
                revoke_key = gr.Button("撤销密钥", variant="stop", elem_id="rag-admin-key-revoke")
                key_status = gr.Markdown(elem_id="rag-admin-key-status")
            with gr.Column(scale=2, min_width=400):
                keys = gr.Dataframe(headers=KEY_HEADERS, interactive=False, wrap=True, elem_id="rag-admin-keys")

    def load(request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.load(principal_of(request))

    def on_add_user(name: str, groups: str, admin: bool, password: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.add_user(principal_of(request), name, groups, admin, password)

    def on_grant(kb: str, kind: str, name: str, role: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.grant(principal_of(request), kb, kind, name, role)

    def on_revoke(kb: str, kind: str, name: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.revoke(principal_of(request), kb, kind, name)

    def on_create_key(user: str, label: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.create_key(principal_of(request), user, label)

    def on_revoke_key(key_id: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        return screens.revoke_key(principal_of(request), key_id)

    demo.load(load, None, [users, grants, keys, grant_kb, key_choice], concurrency_limit=None)
    add_user.click(
        on_add_user,
        [user_name, user_groups, user_admin, user_password],
        [user_status, user_password, users],
        concurrency_limit=None,
    )
    grant.click(on_grant, [grant_kb, grant_kind, grant_name, grant_role], [grant_status, grants, users], concurrency_limit=None)
    revoke.click(on_revoke, [grant_kb, grant_kind, grant_name], [grant_status, grants, users], concurrency_limit=None)
    create_key.click(on_create_key, [key_user, key_label], [key_status, secret, keys, key_choice], concurrency_limit=None)
    revoke_key.click(
        on_revoke_key,
        [key_choice],
        [key_status, secret, keys, key_choice],
        js="(id) => (id && confirm('确定要撤销这个密钥吗？撤销后使用它的程序将无法访问。')) ? id : null",
        concurrency_limit=None,
    )
