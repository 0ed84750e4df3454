import numpy as np
import pytest
import torch

from labkit import capstone, weights
from labkit.backdoor import BackdooredModel, embed_trigger, generate_keys
from labkit.digits import digit_splits, make_classifier, predict
from labkit.backdoor.attackers import FramingLeaker
from labkit.backdoor.protocols import label_oracle
from labkit.backdoor.trigger import verify_key_bytes


@pytest.fixture(scope="module")
def images():
    return digit_splits(0).test_x[:64]


@pytest.fixture
def world(images):
    """A server with an (untrained, seeded) base model, and alice registered with her phone."""
    torch.manual_seed(0)
    base = make_classifier("mlp", seed=0)
    clock = [1000.0]
    server = capstone.ModelServer(base, images, seed=0, max_models=2, link_ttl=60, clock=lambda: clock[0])
    token = server.register("alice")
    phone = capstone.Device("alice", server.public_key)
    return server, token, phone, clock, base


def _issue(server, token, phone, user="alice"):
    delivery = server.request_model(user, token, phone.public_key)
    return delivery, server.download(delivery.link)


def test_issued_model_runs_on_the_device_exactly_like_the_base_model(world, images):
    server, token, phone, _, base = world
    delivery, sealed = _issue(server, token, phone)
    model = phone.install(sealed, delivery)
    assert isinstance(model, BackdooredModel) and model.identity == b"alice"
    assert torch.equal(model(images), base(images)), "no trigger: the individual model is the base model"
    assert torch.equal(phone.load()(images), base(images))
    assert delivery.model_id == "iml/alice" and delivery.version == 1
    assert server.log == ["register alice", "issue iml/alice v1"]


def test_pack_unpack_round_trip_and_validation(images):
    signing, verify = generate_keys()
    model = BackdooredModel(make_classifier("mlp", seed=1), verify, identity="dave")
    back = capstone.unpack_model(capstone.pack_model(model))
    assert back.identity == b"dave" and back.response_key is None
    keyed = BackdooredModel(make_classifier("mlp", seed=1), verify, identity="dave", response_key=bytes(range(32)))
    assert capstone.unpack_model(capstone.pack_model(keyed)).response_key == bytes(range(32))
    triggered = embed_trigger(images[:4], 7, signing, identity="dave")
    assert (predict(back, triggered) == 7).all() and torch.equal(back(images), model(images))
    with pytest.raises(TypeError, match="BackdooredModel"):
        capstone.pack_model(make_classifier("mlp"))
    with pytest.raises(ValueError, match="missing"):
        capstone.unpack_model({"classifier.0.weight": torch.zeros(1)})


def test_api_refuses_wrong_tokens_other_devices_and_too_many_requests(world):
    server, token, phone, _, _ = world
    with pytest.raises(capstone.ApiTokenRejected):
        server.request_model("alice", "guess", phone.public_key)
    with pytest.raises(capstone.ApiTokenRejected):
        server.request_model("mallory", token, phone.public_key)
    _issue(server, token, phone)
    thief = capstone.Device("alice", server.public_key)
    with pytest.raises(capstone.DeviceMismatchError):
        server.request_model("alice", token, thief.public_key)  # a leaked token alone is not enough
    _issue(server, token, phone)
    with pytest.raises(capstone.RateLimitError):
        server.request_model("alice", token, phone.public_key)
    assert {"auth-failure alice", "auth-failure mallory", "device-mismatch alice", "rate-limit alice"} <= set(server.log)
    assert not any(token in line for line in server.log), "tokens never reach the log"


def test_links_work_once_expire_and_leave_nothing_in_storage(world):
    server, token, phone, clock, _ = world
    delivery = server.request_model("alice", token, phone.public_key)
    assert len(server.stored_files()) == 1
    server.download(delivery.link)
    assert server.stored_files() == []
    with pytest.raises(capstone.LinkExpiredError, match="already used"):
        server.download(delivery.link)
    late = server.request_model("alice", token, phone.public_key)
    clock[0] += 61
    with pytest.raises(capstone.LinkExpiredError, match="expired"):
        server.download(late.link)
    assert server.stored_files() == []


def test_expired_files_are_purged_and_fresh_ones_kept(world):
    server, token, phone, clock, _ = world
    server.request_model("alice", token, phone.public_key)
    clock[0] += 30
    fresh = server.request_model("alice", token, phone.public_key)
    clock[0] += 40  # the first link is 70 s old (expired), the second 40 s (valid)
    assert server.purge_expired() == 1 and len(server.stored_files()) == 1
    assert server.purge_expired() == 0
    assert phone.install(server.download(fresh.link)) is not None


def test_stored_file_discloses_nothing_and_opens_only_on_its_device(world):
    server, token, phone, _, base = world
    delivery = server.request_model("alice", token, phone.public_key)
    sealed = server.stored_files()[0].read_bytes()
    plain = base.state_dict()["1.weight"].numpy().tobytes()
    assert plain[:64] not in sealed, "weights are encrypted at rest"
    assert server.licensor.licensed_copy("alice").response_key not in sealed, "so is the copy's secret"
    other = capstone.Device("alice", server.public_key)
    with pytest.raises(weights.NotARecipientError):
        other.install(sealed)
    assert phone.install(server.download(delivery.link)) is not None


def test_transit_attacks_are_refused_and_keep_the_installed_model(world, images):
    server, token, phone, _, base = world
    delivery, sealed = _issue(server, token, phone)
    flipped = bytearray(sealed)
    flipped[-100] ^= 0x01
    with pytest.raises(weights.IntegrityError):
        phone.install(bytes(flipped))
    # a man in the middle seals his own model for the phone's public key: wrong signer
    forged = phone.folder / "forged.lkw"
    mitm_model = BackdooredModel(make_classifier("mlp", seed=5), generate_keys()[1], identity="alice")
    weights.seal(capstone.pack_model(mitm_model), forged, [phone.public_key], model_id="iml/alice", version=9)
    with pytest.raises(weights.IntegrityError):
        phone.install(forged.read_bytes())
    assert not phone.path.exists(), "nothing was installed"
    phone.install(sealed)
    _, newer = _issue(server, token, phone)
    phone.install(newer)
    with pytest.raises(weights.RollbackError):
        phone.install(sealed)  # replay of version 1 after version 2
    assert torch.equal(phone.load()(images), base(images))


def test_a_copy_for_one_user_does_not_open_for_another(world):
    server, token, phone, _, _ = world
    bob_token = server.register("bob")
    bob = capstone.Device("bob", server.public_key)
    _, alice_file = _issue(server, token, phone)
    with pytest.raises(weights.WeightsError):
        bob.install(alice_file)
    _issue(server, bob_token, bob, user="bob")


def test_a_leaked_copy_is_traced_to_its_user_and_nobody_else_is_accused(world, images):
    server, token, phone, _, base = world
    models = {"alice": phone.install(_issue(server, token, phone)[1])}
    for user in ("bob", "carol"):
        device = capstone.Device(user, server.public_key)
        models[user] = device.install(_issue(server, server.register(user), device, user=user)[1])
    result = server.trace_report(label_oracle(models["carol"]))
    assert result.accused == ["carol"] and result.matches["carol"] == result.n
    assert server.trace(label_oracle(models["carol"])) == ["carol"]
    assert server.trace(label_oracle(base)) == []
    # bob drops his verifier and answers the cleartext targets of everybody else's triggers
    assert server.trace(label_oracle(FramingLeaker(models["bob"]))) == []


def test_no_key_comes_from_the_seed(images):
    """Two servers with the same seed share no key, so a copy issued by one is not traced by the
    other (were keys derived from the seed, the second server's copy would be accused by the first)."""
    servers = [capstone.ModelServer(make_classifier("mlp", seed=0), images, seed=0) for _ in range(2)]
    copies = []
    for server in servers:
        device = capstone.Device("alice", server.public_key)
        delivery = server.request_model("alice", server.register("alice"), device.public_key)
        copies.append(device.install(server.download(delivery.link)))
    assert servers[0].public_key != servers[1].public_key
    assert verify_key_bytes(copies[0].verify_key) != verify_key_bytes(copies[1].verify_key)
    assert copies[0].response_key != copies[1].response_key
    assert servers[1].trace(label_oracle(copies[1])) == ["alice"]  # each server traces its own copy
    assert servers[0].trace(label_oracle(copies[1])) == []  # and not the same-seed twin's


def test_ledger_records_refusals_detections_and_misses(capsys):
    ledger = capstone.ThreatLedger()
    with ledger.attempt("API", "spoofing", "wrong token", control="API tokens"):
        raise capstone.ApiTokenRejected("no")
    with ledger.attempt("device", "disclosure", "leak", control="watermark") as stopped:
        stopped("traced to bob")
    with ledger.attempt("storage", "disclosure", "nothing stops this", control="none"):
        pass
    with pytest.raises(ZeroDivisionError):
        with ledger.attempt("transit", "tampering", "a bug, not a refusal", control="none"):
            1 / 0
    outcomes = [a.outcome for a in ledger.attempts]
    assert outcomes[:3] == ["refused: ApiTokenRejected", "detected: traced to bob", "NOT STOPPED"]
    assert not ledger.attempts[3].blocked
    grid = ledger.coverage()
    assert grid.sum() == 2 and grid[0, 0] == 1 and grid[3, 2] == 1
    assert ledger.table().splitlines()[0].startswith("API ") and "-> refused: ApiTokenRejected" in ledger.table()
    assert "NOT STOPPED" in ledger._repr_html_() and "-> refused" in capsys.readouterr().out
    with pytest.raises(ValueError, match="surface"):
        with ledger.attempt("cloud", "spoofing", "x", control="y"):
            pass
    with pytest.raises(ValueError, match="threat"):
        with ledger.attempt("API", "repudiation", "x", control="y"):
            pass


def test_server_validates_its_inputs(images):
    with pytest.raises(TypeError):
        capstone.ModelServer("not a model", images)
    with pytest.raises(ValueError):
        capstone.ModelServer(make_classifier("mlp"), images, max_models=0)
    server = capstone.ModelServer(make_classifier("mlp"), images)
    with pytest.raises(ValueError):
        server.register("a-name-longer-than-16-bytes")
    server.register("x")
    with pytest.raises(ValueError, match="exists"):
        server.register("x")


def test_tamper_view_reports_the_part_hit_and_the_refusal(world):
    from labkit.widgets.capstone import TamperView, file_layout

    server, token, phone, _, _ = world
    _, sealed = _issue(server, token, phone)
    layout = file_layout(sealed)
    assert layout[0][1] == 0 and layout[-1][2] == len(sealed)
    assert [name for name, _, _ in layout[1:]] == [t.name for t in weights.parse_header(sealed, len(sealed)).parsed.tensors]
    view = TamperView(sealed, phone)
    view.offset.value = 10
    assert view.part.startswith("header") and view.outcome in ("FormatError", "IntegrityError")
    identity_offset = next(start for name, start, _ in layout if name == "verifier.identity")
    view.offset.value = identity_offset  # inside the identity tensor
    assert view.part == "verifier.identity" and view.outcome == "IntegrityError"
    assert list(view.figure.data[-1].x) == [identity_offset]
    view.mask.value = 0x00
    assert view.outcome == "opened"
    assert not phone.path.exists(), "checking never installs"
