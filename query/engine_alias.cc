// Collection aliases (engine.h, "Aliases"): a second name for a collection,
// switched atomically, so a re-built collection can replace another under
// the name clients use.
//
// Aliases live in Engine::aliases_ (alias -> collection name), under the
// same lock as the collections, so Find sees both at one moment and a
// request bound through an alias keeps the collection it found. Every
// change is a barrier Writer: Prepare checks it against the applied state
// and writes the alias record ("a/" + alias, by collection id) with its
// operation-log entry in one batch; Apply changes the map. At Open the
// records are read back after the collections.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/engine.h"
#include "query/engine_writer.h"
#include "spdlog/spdlog.h"

namespace quiver {
namespace {

absl::Status CheckAliasName(const std::string& alias) {
  if (alias.empty()) return absl::InvalidArgumentError("alias is empty");
  if (!IsValidName(alias)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid alias \"", TruncateForMessage(alias),
        "\": alias names follow the collection name rule [A-Za-z][A-Za-z0-9_]{0,63}"));
  }
  return absl::OkStatus();
}

std::string Quoted(const std::string& name) {
  return absl::StrCat("\"", TruncateForMessage(name), "\"");
}

}  // namespace

absl::Status Engine::RecoverAliases() {
  QUIVER_ASSIGN_OR_RETURN(std::vector<storage::AliasRecord> records, store_->LoadAliases());
  MutexLock lock(&collections_mu_);
  absl::flat_hash_map<uint32_t, std::string> by_id;
  for (const auto& [name, c] : collections_) by_id.emplace(c->id(), name);
  for (const storage::AliasRecord& rec : records) {
    auto it = by_id.find(rec.collection_id());
    if (it == by_id.end()) {
      // Drops refuse collections with aliases, so only damage gets here;
      // the alias could lead nowhere.
      spdlog::warn("alias \"{}\" names collection id {}, which does not exist: ignored",
                   rec.alias(), rec.collection_id());
      continue;
    }
    aliases_[rec.alias()] = it->second;
  }
  if (!aliases_.empty()) spdlog::info("recovered {} aliases", aliases_.size());
  return absl::OkStatus();
}

absl::Status Engine::CheckNameFree(const std::string& name) const {
  ReaderMutexLock lock(&collections_mu_);
  if (collections_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat("collection ", Quoted(name), " already exists"));
  }
  if (auto a = aliases_.find(name); a != aliases_.end()) {
    return absl::AlreadyExistsError(absl::StrCat(Quoted(name), " is already an alias (of collection ",
                                                 Quoted(a->second),
                                                 "); aliases and collections share one namespace"));
  }
  return absl::OkStatus();
}

absl::Status Engine::CheckDroppable(const std::string& name) const {
  ReaderMutexLock lock(&collections_mu_);
  if (auto a = aliases_.find(name); a != aliases_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        Quoted(name), " is an alias of collection ", Quoted(a->second),
        ": drop the collection by its own name, or DeleteAlias to remove the alias"));
  }
  std::vector<std::string> pointing;
  for (const auto& [alias, target] : aliases_) {
    if (target == name) pointing.push_back(alias);
  }
  if (pointing.empty()) return absl::OkStatus();
  std::sort(pointing.begin(), pointing.end());
  return absl::FailedPreconditionError(absl::StrCat(
      "collection ", Quoted(name), " has aliases (", absl::StrJoin(pointing, ", "),
      "): delete them or switch them to another collection first"));
}

void Engine::EnqueueAlias(storage::OpRecord::Type op, const std::string& alias,
                          const std::string& collection,
                          std::function<void(uint64_t)> set_sequence, Done done) {
  if (absl::Status s = CheckAliasName(alias); !s.ok()) return done(s);
  if (op != storage::OpRecord::DELETE_ALIAS && collection.empty()) {
    return done(absl::InvalidArgumentError("collection is empty: name the alias's collection"));
  }
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kAlias;
  // Alone in its group: Prepare checks the names against applied state.
  w->barrier = true;
  w->alias_op = op;
  w->name = alias;
  w->alias_target = collection;
  w->respond = [set_sequence = std::move(set_sequence)](Writer& w) { set_sequence(w.seq); };
  w->done = std::move(done);
  Enqueue(std::move(w));
}

absl::Status Engine::PrepareAlias(Writer& w, uint64_t seq, storage::Batch* batch) {
  std::shared_ptr<Collection> target;
  {
    ReaderMutexLock lock(&collections_mu_);
    const auto existing = aliases_.find(w.name);
    const bool is_alias = existing != aliases_.end();
    if (w.alias_op == storage::OpRecord::CREATE_ALIAS) {
      if (collections_.contains(w.name)) {
        return absl::AlreadyExistsError(absl::StrCat(
            "a collection is called ", Quoted(w.name),
            "; aliases and collections share one namespace"));
      }
      if (is_alias) {
        return absl::AlreadyExistsError(absl::StrCat("alias ", Quoted(w.name),
                                                     " already exists (of collection ",
                                                     Quoted(existing->second),
                                                     "); SwitchAlias re-points it"));
      }
    } else if (!is_alias) {
      return absl::NotFoundError(absl::StrCat(
          "alias ", Quoted(w.name), " does not exist",
          collections_.contains(w.name) ? " (that name is a collection's, not an alias)" : ""));
    }
    if (w.alias_op != storage::OpRecord::DELETE_ALIAS) {
      if (auto a = aliases_.find(w.alias_target); a != aliases_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            Quoted(w.alias_target), " is itself an alias (of collection ", Quoted(a->second),
            "): an alias must name a collection"));
      }
      auto c = collections_.find(w.alias_target);
      if (c == collections_.end()) {
        return absl::NotFoundError(
            absl::StrCat("collection ", Quoted(w.alias_target), " does not exist"));
      }
      target = c->second;
    } else {
      w.alias_target = existing->second;
      auto c = collections_.find(w.alias_target);
      if (c != collections_.end()) target = c->second;
    }
  }
  const int64_t now = absl::ToUnixMillis(absl::Now());
  if (w.alias_op == storage::OpRecord::DELETE_ALIAS) {
    batch->DeleteAlias(w.name);
  } else {
    storage::AliasRecord rec;
    rec.set_alias(w.name);
    rec.set_collection_id(target->id());
    rec.set_updated_at_unix_ms(now);
    batch->PutAlias(rec);
  }
  storage::OpRecord op;
  op.set_type(w.alias_op);
  if (target != nullptr) op.set_collection_id(target->id());
  op.set_unix_ms(now);
  op.set_alias(w.name);
  batch->LogOp(seq, op);
  return absl::OkStatus();
}

void Engine::ApplyAlias(const Writer& w) {
  MutexLock lock(&collections_mu_);
  if (w.alias_op == storage::OpRecord::DELETE_ALIAS) {
    aliases_.erase(w.name);
  } else {
    aliases_[w.name] = w.alias_target;
  }
}

void Engine::CreateAlias(const v1::CreateAliasRequest& req, v1::CreateAliasResponse* resp,
                         Done done) {
  EnqueueAlias(storage::OpRecord::CREATE_ALIAS, req.alias(), req.collection(),
               [resp](uint64_t seq) { resp->set_sequence(seq); }, std::move(done));
}

void Engine::SwitchAlias(const v1::SwitchAliasRequest& req, v1::SwitchAliasResponse* resp,
                         Done done) {
  EnqueueAlias(storage::OpRecord::SWITCH_ALIAS, req.alias(), req.collection(),
               [resp](uint64_t seq) { resp->set_sequence(seq); }, std::move(done));
}

void Engine::DeleteAlias(const v1::DeleteAliasRequest& req, v1::DeleteAliasResponse* resp,
                         Done done) {
  EnqueueAlias(storage::OpRecord::DELETE_ALIAS, req.alias(), "",
               [resp](uint64_t seq) { resp->set_sequence(seq); }, std::move(done));
}

absl::Status Engine::CreateAlias(const v1::CreateAliasRequest& req,
                                 v1::CreateAliasResponse* resp) {
  return Wait([&](Done d) { CreateAlias(req, resp, std::move(d)); });
}
absl::Status Engine::SwitchAlias(const v1::SwitchAliasRequest& req,
                                 v1::SwitchAliasResponse* resp) {
  return Wait([&](Done d) { SwitchAlias(req, resp, std::move(d)); });
}
absl::Status Engine::DeleteAlias(const v1::DeleteAliasRequest& req,
                                 v1::DeleteAliasResponse* resp) {
  return Wait([&](Done d) { DeleteAlias(req, resp, std::move(d)); });
}

absl::Status Engine::ListAliases(const v1::ListAliasesRequest& req,
                                 v1::ListAliasesResponse* resp) const {
  std::string only;
  if (!req.collection().empty()) {
    QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
    only = c->name();
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  {
    ReaderMutexLock lock(&collections_mu_);
    for (const auto& [alias, target] : aliases_) {
      if (only.empty() || target == only) pairs.emplace_back(alias, target);
    }
  }
  std::sort(pairs.begin(), pairs.end());
  for (auto& [alias, target] : pairs) {
    v1::AliasInfo* info = resp->add_aliases();
    info->set_alias(std::move(alias));
    info->set_collection(std::move(target));
  }
  return absl::OkStatus();
}

}  // namespace quiver
