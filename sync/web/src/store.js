// The production as a Y.Doc, laid out as docs/schema.md says, with typed reads (plain
// objects, defaults filled in, deleted entities left out) and the writes the views make.
// Every write is checked against the model's rules first and is one Yjs transaction.
import * as Y from "yjs";
import { newId } from "./util.js";

export const STAGES = ["submitted", "shortlisted", "audition", "callback", "chemistry_read", "offer", "booked"];
export const FOLDED_STAGES = ["declined", "released", "dropped"];

export class Refused extends Error {}

export class Store {
  constructor(doc, rules, { member, canWrite }) {
    this.doc = doc;
    this.rules = rules;
    this.member = member;
    this.canWrite = canWrite;
    this.cache = new Map();
    this.version = 0;
    this.listeners = new Set();
    // Only the collections a change touched are read again (a rating change must not
    // re-read 5,000 talents).
    for (const kind of Object.keys(rules.schema.kinds)) {
      if (kind === "production") continue;
      this.collection(kind).observeDeep(() => {
        this.cache.delete(kind);
        this.cache.delete(`${kind}#ids`);
      });
    }
    // After every transaction, not on "update": an update listener makes Yjs encode
    // each transaction again (the whole production, for a first sync).
    doc.on("afterTransaction", () => {
      this.version += 1;
      for (const listener of this.listeners) listener();
    });
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  collection(kind) {
    return this.doc.getMap(this.rules.kind(kind).collection);
  }

  production() {
    const data = this.doc.getMap("production").toJSON();
    return { ...this.rules.shared("production"), ...data };
  }

  /** Every live entity of a kind, as plain objects with defaults (cached per change). */
  all(kind) {
    if (!this.cache.has(kind)) {
      const defaults = this.rules.shared(kind);
      const out = [];
      this.collection(kind).forEach((value, id) => {
        if (!(value instanceof Y.Map)) return;
        const data = { ...defaults, ...value.toJSON(), id };
        if (data.deleted === true) return;
        out.push(data);
      });
      out.sort((a, b) => (a.id < b.id ? -1 : 1));
      this.cache.set(kind, out);
    }
    return this.cache.get(kind);
  }

  byId(kind) {
    const key = `${kind}#ids`;
    if (!this.cache.has(key)) this.cache.set(key, new Map(this.all(kind).map((e) => [e.id, e])));
    return this.cache.get(key);
  }

  /** One live entity (read on its own: a card needs one talent, not all 5,000). */
  get(kind, id) {
    const cached = this.cache.get(`${kind}#ids`);
    if (cached) return cached.get(id);
    const map = this.collection(kind).get(id);
    if (!(map instanceof Y.Map)) return undefined;
    const data = { ...this.rules.shared(kind), ...map.toJSON(), id };
    return data.deleted === true ? undefined : data;
  }

  // -- writes -------------------------------------------------------------------------------

  guard() {
    if (!this.canWrite) throw new Refused("this token is read-only");
  }

  /** Change some fields of one entity, after checking the whole result. */
  edit(kind, id, changes) {
    this.guard();
    const map = this.collection(kind).get(id);
    if (!(map instanceof Y.Map)) throw new Refused(`no ${kind} ${id}`);
    const next = { ...this.rules.defaults(kind), ...map.toJSON(), ...changes, id };
    this.refuseIfBroken(kind, next);
    this.doc.transact(() => {
      for (const [field, value] of Object.entries(changes)) this.writeField(kind, map, field, value);
    }, "web");
  }

  /** A new entity: its id, the fields given, and its CRDT containers. */
  create(kind, fields) {
    this.guard();
    const id = newId();
    const entity = { ...this.rules.defaults(kind), ...fields, id };
    this.refuseIfBroken(kind, entity);
    const info = this.rules.kind(kind);
    this.doc.transact(() => {
      const map = new Y.Map();
      this.collection(kind).set(id, map);
      map.set("id", id);
      for (const name of info.crdt_texts) map.set(name, new Y.Text(fields[name] ?? ""));
      for (const name of info.crdt_arrays) map.set(name, Y.Array.from(fields[name] ?? []));
      for (const name of info.crdt_maps) {
        const nested = new Y.Map();
        map.set(name, nested);
        for (const [key, value] of Object.entries(fields[name] ?? {})) nested.set(key, value);
      }
      for (const [name, value] of Object.entries(fields)) {
        if (!info.crdt_texts.includes(name) && !info.crdt_arrays.includes(name) && !info.crdt_maps.includes(name)) {
          map.set(name, value);
        }
      }
    }, "web");
    return id;
  }

  refuseIfBroken(kind, entity) {
    const refusal = this.rules.check(kind, entity);
    if (refusal) throw new Refused(refusal);
  }

  writeField(kind, map, field, value) {
    const info = this.rules.kind(kind);
    const current = map.get(field);
    if (info.crdt_texts.includes(field)) {
      if (current instanceof Y.Text) {
        if (current.toString() !== value) {
          current.delete(0, current.length);
          current.insert(0, value);
        }
      } else map.set(field, new Y.Text(value));
    } else if (info.crdt_arrays.includes(field)) {
      if (current instanceof Y.Array) {
        current.delete(0, current.length);
        current.insert(0, value);
      } else map.set(field, Y.Array.from(value));
    } else if (info.crdt_maps.includes(field)) {
      const nested = current instanceof Y.Map ? current : new Y.Map();
      if (nested !== current) map.set(field, nested);
      for (const key of [...nested.keys()]) if (!(key in value)) nested.delete(key);
      for (const [key, item] of Object.entries(value)) {
        if (JSON.stringify(nested.get(key)) !== JSON.stringify(item)) nested.set(key, item);
      }
    } else {
      map.set(field, value);
    }
  }

  /** One key of a nested Y.Map (a member's rating): merges on its own with others'. */
  setKey(kind, id, field, key, value) {
    this.guard();
    const map = this.collection(kind).get(id);
    const data = { ...this.rules.defaults(kind), ...map.toJSON() };
    this.refuseIfBroken(kind, { ...data, [field]: { ...data[field], [key]: value } });
    this.doc.transact(() => {
      let nested = map.get(field);
      if (!(nested instanceof Y.Map)) {
        // A peer wrote a plain object: upgrade it (docs/schema.md), keeping its keys.
        const plain = nested && typeof nested === "object" ? nested : {};
        nested = new Y.Map(Object.entries(plain));
        map.set(field, nested);
      }
      nested.set(key, value);
    }, "web");
  }

  /** Move one item of a Y.Array field (backups, a day's scenes) to a new position. */
  moveItem(kind, id, field, from, to) {
    this.guard();
    const array = this.arrayField(kind, id, field);
    if (from === to || from < 0 || from >= array.length) return;
    this.doc.transact(() => {
      const item = array.get(from);
      array.delete(from, 1);
      array.insert(Math.min(to, array.length), [item]);
    }, "web");
  }

  arrayField(kind, id, field) {
    const map = this.collection(kind).get(id);
    let array = map.get(field);
    if (!(array instanceof Y.Array)) {
      const items = Array.isArray(array) ? array : [];
      array = Y.Array.from(items);
      this.doc.transact(() => map.set(field, array), "web");
    }
    return array;
  }

  /** Put a scene on a shoot day at a position (off its old day), in one transaction. */
  scheduleScene(sceneId, dayId, index) {
    this.guard();
    const scene = this.collection("scene").get(sceneId);
    if (!(scene instanceof Y.Map)) throw new Refused(`no scene ${sceneId}`);
    const days = this.collection("shoot_day");
    const arrays = [];
    days.forEach((day, id) => {
      if (day instanceof Y.Map) arrays.push([id, this.arrayField("shoot_day", id, "scene_ids")]);
    });
    this.doc.transact(() => {
      let position = index;
      for (const [id, array] of arrays) {
        const items = array.toArray();
        for (let i = items.length - 1; i >= 0; i--) {
          if (items[i] !== sceneId) continue;
          array.delete(i, 1);
          if (id === dayId && i < position) position -= 1;
        }
      }
      if (dayId) {
        const target = arrays.find(([id]) => id === dayId)[1];
        target.insert(Math.max(0, Math.min(position, target.length)), [sceneId]);
      }
      scene.set("shoot_day_id", dayId ?? null);
    }, "web");
  }
}
