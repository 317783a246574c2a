"""A small synthetic corpus whose right answers are known: one document per animal."""

from __future__ import annotations

from schemas.documents import DocumentEvent

ANIMALS = {
    "axolotl": "worms and small crustaceans",
    "pangolin": "ants and termites",
    "narwhal": "arctic cod and squid",
    "capybara": "grasses and aquatic plants",
    "okapi": "leaves and fungi",
    "quokka": "shrubs and succulents",
    "tardigrade": "moss cells and algae",
    "platypus": "freshwater shrimp and insect larvae",
    "wombat": "native grasses and roots",
    "kakapo": "seeds of the rimu tree",
    "aye-aye": "grubs tapped out of dead wood",
    "fennec fox": "desert rodents and beetles",
    "manatee": "seagrass",
    "red panda": "bamboo shoots",
    "koala": "eucalyptus leaves",
    "puffin": "sand eels and herring",
    "sloth": "cecropia leaves",
    "snow leopard": "blue sheep and ibex",
    "giant anteater": "termites and ant larvae",
    "hoatzin": "swamp leaves fermented in its crop",
    "vampire bat": "the blood of cattle",
    "koi": "pellets and aquatic insects",
    "blue whale": "krill",
    "chameleon": "crickets and grasshoppers",
}


def animal_doc_id(animal: str) -> str:
    return f"animals/{animal.replace(' ', '-')}.md"


def animal_document(animal: str, tenant: str = "default", **overrides: object) -> DocumentEvent:
    food = ANIMALS[animal]
    text = (
        f"The {animal} has been observed for many seasons by the field team. "
        f"Its diet consists mainly of {food}, which it finds close to its shelter. "
        f"Field notes record how the {animal} rests during the hottest hours and moves at dusk. "
        f"Conservation of the {animal} depends on protecting the places where it feeds."
    )
    fields: dict[str, object] = {
        "doc_id": animal_doc_id(animal),
        "title": f"Field notes: the {animal}",
        "text": text,
        "tenant": tenant,
    }
    fields.update(overrides)
    return DocumentEvent.model_validate(fields)


def corpus(tenant: str = "default") -> list[DocumentEvent]:
    return [animal_document(animal, tenant) for animal in ANIMALS]
