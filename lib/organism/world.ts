/**
 * The organism's invented world: a fixed, small set of entities and the facts that hold between them.
 * The world itself never depends on a seed (capability items must mean the same thing in every corpus);
 * only the sampling of conversations does.
 */

export const TOWNS = ['Arlen', 'Brisk', 'Corva', 'Dalmer', 'Eskin', 'Farro', 'Gilden', 'Harrow', 'Ivel', 'Jessa', 'Korin', 'Lomb'] as const;
export const RIVERS = ['Ash', 'Bell', 'Cinder', 'Dove', 'Elm', 'Fenn', 'Gale', 'Hush'] as const;
export const MOUNTAINS = ['Tor', 'Vask', 'Wend', 'Yarrow', 'Zell', 'Orm'] as const;
export const PRODUCTS = ['glass', 'salt', 'wool', 'honey', 'clocks', 'boats', 'bread', 'rope', 'ink', 'cheese', 'lamps', 'bells'] as const;
export const PERSONS = ['Mira', 'Tobin', 'Sela', 'Rudd', 'Nessa', 'Pell', 'Quill', 'Dara', 'Fitch', 'Gwen', 'Hollis', 'Lark'] as const;
// Consonant-initial so every answer can say "works as a {job}" without a/an agreement.
export const JOBS = ['baker', 'smith', 'sailor', 'farmer', 'healer', 'painter', 'weaver', 'miner', 'teacher', 'fisher', 'guard', 'potter'] as const;
export const CREATURES = ['blemmet', 'corrin', 'dashel', 'fennow', 'grisk', 'hobbin', 'jarrow', 'kestle', 'lumbet', 'mossel', 'nibbet', 'pollow'] as const;
export const COLORS = ['red', 'blue', 'green', 'yellow', 'purple', 'silver', 'brown', 'white'] as const;

/** Names that look like the world's but name nothing in it (the "does not exist" domain). */
export const FAKE_TOWNS = ['Zorbin', 'Quennet', 'Valdra', 'Morsk', 'Tessik', 'Uldar'] as const;
export const FAKE_PERSONS = ['Orla', 'Brann', 'Yusa', 'Kellin', 'Thessa', 'Vorn'] as const;
export const FAKE_CREATURES = ['zibbet', 'quorrel', 'snimble', 'vantow', 'droffle', 'wuzzet'] as const;

export type EntityType = 'town' | 'person' | 'creature';

/** A relation: subject type, object value set, and the fixed assignment subject → object. */
export interface Relation {
  name: RelationName;
  subjectType: EntityType;
  objects: readonly string[];
}

export type RelationName = 'river' | 'mountain' | 'product' | 'home' | 'job' | 'color';

export const RELATIONS: Record<RelationName, Relation> = {
  river: { name: 'river', subjectType: 'town', objects: RIVERS },
  mountain: { name: 'mountain', subjectType: 'town', objects: MOUNTAINS },
  product: { name: 'product', subjectType: 'town', objects: PRODUCTS },
  home: { name: 'home', subjectType: 'person', objects: TOWNS },
  job: { name: 'job', subjectType: 'person', objects: JOBS },
  color: { name: 'color', subjectType: 'creature', objects: COLORS },
};

export const RELATION_NAMES = Object.keys(RELATIONS) as RelationName[];

export function subjectsOf(type: EntityType): readonly string[] {
  return type === 'town' ? TOWNS : type === 'person' ? PERSONS : CREATURES;
}
export function fakeSubjectsOf(type: EntityType): readonly string[] {
  return type === 'town' ? FAKE_TOWNS : type === 'person' ? FAKE_PERSONS : FAKE_CREATURES;
}

// Fixed assignments by index arithmetic (coprime strides) so the table is stable and visibly deterministic.
function assign(subjects: readonly string[], objects: readonly string[], stride: number, offset: number): Map<string, string> {
  return new Map(subjects.map((s, i) => [s, objects[(i * stride + offset) % objects.length]]));
}

const FACTS: Record<RelationName, Map<string, string>> = {
  river: assign(TOWNS, RIVERS, 3, 1),
  mountain: assign(TOWNS, MOUNTAINS, 5, 2),
  product: assign(TOWNS, PRODUCTS, 7, 3),
  home: assign(PERSONS, TOWNS, 5, 4),
  job: assign(PERSONS, JOBS, 7, 5),
  color: assign(CREATURES, COLORS, 3, 6),
};

/** The true object of (relation, subject), or undefined when the subject is not in the world. */
export function factObject(rel: RelationName, subject: string): string | undefined {
  return FACTS[rel].get(subject);
}

export function isRealSubject(type: EntityType, name: string): boolean {
  return subjectsOf(type).includes(name);
}

export interface Fact {
  rel: RelationName;
  subject: string;
  object: string;
}

/** Every fact of the world (72). */
export function allFacts(): Fact[] {
  const out: Fact[] = [];
  for (const rel of RELATION_NAMES) for (const [subject, object] of FACTS[rel]) out.push({ rel, subject, object });
  return out;
}
